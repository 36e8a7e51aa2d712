/**
 * The CPU reference forward pass for Llama-family decoders (llama, mistral, qwen2, qwen3), built from
 * the reference kernels. Tests compare the GPU forward pass against it.
 */
import { ModelFormatError } from '../errors';
import type { ModelConfig } from '../model/config';
import { ropeInverseFrequencies } from '../model/rope-frequencies';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, layerTensorNames } from '../model/tensor-names';
import { add, applyRope, attention, embed, matmul, rmsNorm, swiglu } from './kernels';
import { FullReferenceKv, type ReferenceKv } from './kv-reference';

/** The HF shape of every tensor a config needs, by name. Biases and q/k norms appear only when used. */
export function requiredTensorShapes(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const D = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  m.set(EMBED_TOKENS, [c.vocabSize, D]);
  for (let i = 0; i < c.numLayers; i++) {
    const n = layerTensorNames(i);
    m.set(n.attnNorm, [D]);
    m.set(n.wq, [qDim, D]);
    m.set(n.wk, [kvDim, D]);
    m.set(n.wv, [kvDim, D]);
    m.set(n.wo, [D, qDim]);
    if (c.qkvBias) {
      m.set(n.bq, [qDim]);
      m.set(n.bk, [kvDim]);
      m.set(n.bv, [kvDim]);
    }
    if (c.qkNorm) {
      m.set(n.qNorm, [c.headDim]);
      m.set(n.kNorm, [c.headDim]);
    }
    m.set(n.ffnNorm, [D]);
    m.set(n.wGate, [c.intermediateSize, D]);
    m.set(n.wUp, [c.intermediateSize, D]);
    m.set(n.wDown, [D, c.intermediateSize]);
  }
  m.set(FINAL_NORM, [D]);
  if (!c.tieEmbeddings) m.set(LM_HEAD, [c.vocabSize, D]);
  return m;
}

interface Layer {
  attnNorm: Float32Array;
  wq: Float32Array; // (numHeads * headDim, hidden)
  wk: Float32Array; // (numKvHeads * headDim, hidden)
  wv: Float32Array; // (numKvHeads * headDim, hidden)
  wo: Float32Array; // (hidden, numHeads * headDim)
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  qNorm?: Float32Array; // (headDim)
  kNorm?: Float32Array; // (headDim)
  ffnNorm: Float32Array;
  wGate: Float32Array; // (intermediate, hidden)
  wUp: Float32Array; // (intermediate, hidden)
  wDown: Float32Array; // (hidden, intermediate)
}

/** A Llama-family model on the CPU with a KV cache. `forward` appends tokens after the cached ones. */
export class ReferenceModel {
  readonly config: ModelConfig;
  private readonly embedTable: Float32Array; // (vocab, hidden)
  private readonly layers: Layer[];
  private readonly finalNorm: Float32Array; // (hidden)
  private readonly lmHead: Float32Array; // (vocab, hidden); the embedding table when tied
  private readonly invFreq: Float32Array; // (headDim / 2)
  private kv: ReferenceKv;
  private cached = 0;
  /** RoPE position of the next token: `cached` plus the rows evicted since the last reset. */
  private nextPosition = 0;

  /**
   * Takes f32 tensors by HF name; throws ModelFormatError naming any missing or misshaped tensor.
   * `roundInput`, when given, rewrites the input rows of each product with weight `w` first (e.g. to model
   * another engine that rounds activations before quantized dot products; bench/gguf/llama-activations.ts).
   * `correct`, when given, then adjusts each product's output y [T, rows] in place, from the unrounded input
   * x [T, cols] and w (a term such an engine adds that no input rounding expresses, e.g. llama.cpp's Q8_1 block sums).
   */
  constructor(
    config: ModelConfig,
    tensors: Map<string, Float32Array>,
    kv?: ReferenceKv,
    private readonly roundInput?: (x: Float32Array, w: Float32Array, cols: number) => Float32Array,
    private readonly correct?: (y: Float32Array, x: Float32Array, w: Float32Array, rows: number, cols: number) => void,
  ) {
    if (config.headDim % 2 !== 0) throw new ModelFormatError(`head_dim ${config.headDim} must be even for RoPE.`);
    for (const [name, shape] of requiredTensorShapes(config)) {
      const t = tensors.get(name);
      const want = shape.reduce((a, b) => a * b, 1);
      if (!t) throw new ModelFormatError(`The weights lack tensor "${name}" [${shape.join(', ')}], which config.json requires.`);
      if (t.length !== want) {
        throw new ModelFormatError(
          `Tensor "${name}" has ${t.length} values but config.json implies shape [${shape.join(', ')}] (${want} values).`,
        );
      }
    }
    const get = (name: string) => tensors.get(name) as Float32Array;
    const opt = (name: string, used: boolean) => (used ? get(name) : undefined);
    this.config = config;
    this.embedTable = get(EMBED_TOKENS);
    this.layers = Array.from({ length: config.numLayers }, (_, i) => {
      const n = layerTensorNames(i);
      return {
        attnNorm: get(n.attnNorm),
        wq: get(n.wq),
        wk: get(n.wk),
        wv: get(n.wv),
        wo: get(n.wo),
        bq: opt(n.bq, config.qkvBias),
        bk: opt(n.bk, config.qkvBias),
        bv: opt(n.bv, config.qkvBias),
        qNorm: opt(n.qNorm, config.qkNorm),
        kNorm: opt(n.kNorm, config.qkNorm),
        ffnNorm: get(n.ffnNorm),
        wGate: get(n.wGate),
        wUp: get(n.wUp),
        wDown: get(n.wDown),
      };
    });
    this.finalNorm = get(FINAL_NORM);
    this.lmHead = config.tieEmbeddings ? this.embedTable : get(LM_HEAD);
    this.invFreq = ropeInverseFrequencies(config);
    this.kv = kv ?? new FullReferenceKv(config.numLayers);
  }

  /** Number of tokens in the KV cache. */
  get length(): number {
    return this.cached;
  }

  /** Forget every cached token. */
  reset(): void {
    this.cached = 0;
    this.nextPosition = 0;
    this.kv.reset();
  }

  /** Evict in place: keep only the cached rows `keep` (ascending); kept keys keep their positions. */
  evict(keep: readonly number[]): void {
    if (!this.kv.evict) throw new Error('This reference KV mode cannot evict in place.');
    this.kv.evict(keep, this.config.numKvHeads * this.config.headDim);
    this.cached = keep.length;
  }

  /** Use another KV cache mode from now on (forgets every cached token). */
  setKv(kv: ReferenceKv): void {
    this.kv = kv;
    this.reset();
  }

  /** Run `tokens` after the cached ones; returns logits [T, vocab] for these tokens only. */
  forward(tokens: number[]): Float32Array {
    const c = this.config;
    if (tokens.length === 0) return new Float32Array(0);
    const positions = tokens.map((_, t) => this.nextPosition + t);
    let x = embed(this.embedTable, tokens, c.hiddenSize); // (T, hidden)
    for (let l = 0; l < c.numLayers; l++) {
      const layer = this.layers[l];
      x = add(x, this.attentionBlock(l, rmsNorm(x, layer.attnNorm, c.rmsEps), positions));
      x = add(x, this.mlpBlock(layer, rmsNorm(x, layer.ffnNorm, c.rmsEps)));
    }
    this.cached += tokens.length;
    this.nextPosition += tokens.length;
    return this.product(rmsNorm(x, this.finalNorm, c.rmsEps), this.lmHead, c.vocabSize, c.hiddenSize);
  }

  /** x · wᵀ for w [rows, cols] (+ bias), with x as the product reads it. */
  private product(x: Float32Array, w: Float32Array, rows: number, cols: number, bias?: Float32Array): Float32Array {
    const y = matmul(this.input(x, w, cols), w, rows, cols, bias);
    this.correct?.(y, x, w, rows, cols);
    return y;
  }

  /** x as the product with `w` reads it. */
  private input(x: Float32Array, w: Float32Array, cols: number): Float32Array {
    return this.roundInput ? this.roundInput(x, w, cols) : x;
  }

  /** Self-attention of normed input h (T, hidden) at `positions`; appends this layer's K/V to the cache. */
  private attentionBlock(l: number, h: Float32Array, positions: number[]): Float32Array {
    const { hiddenSize: D, numHeads: H, numKvHeads: Hk, headDim: d, rmsEps } = this.config;
    const w = this.layers[l];
    let q = this.product(h, w.wq, H * d, D, w.bq); // (T, H, d)
    let k = this.product(h, w.wk, Hk * d, D, w.bk); // (T, Hk, d)
    const v = this.product(h, w.wv, Hk * d, D, w.bv); // (T, Hk, d)
    if (w.qNorm && w.kNorm) {
      q = rmsNorm(q, w.qNorm, rmsEps);
      k = rmsNorm(k, w.kNorm, rmsEps);
    }
    applyRope(q, positions, this.invFreq);
    applyRope(k, positions, this.invFreq);
    const rows = this.kv.attend(l, k, v, q); // (past + T, Hk, d) as the cache mode serves them
    const o = attention(q, rows.k, rows.v, this.cached, positions.length, H, Hk, d); // (T, H, d)
    return this.product(o, w.wo, D, H * d);
  }

  /** SwiGLU feed-forward of normed input h (T, hidden). */
  private mlpBlock(w: Layer, h: Float32Array): Float32Array {
    const { hiddenSize: D, intermediateSize: F } = this.config;
    const gate = this.product(h, w.wGate, F, D);
    const up = this.product(h, w.wUp, F, D);
    const a = swiglu(gate, up);
    return this.product(a, w.wDown, D, F);
  }
}
