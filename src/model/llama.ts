/**
 * The Llama-family decoder (Llama, Mistral, Qwen2, Qwen3, SmolLM2) on the GPU. `recordForward` reads like
 * the model's math; it is recorded once per step shape into a Plan and replayed.
 */
import { BufferGroup } from '../gpu/buffers';
import type { GpuContext } from '../gpu/device';
import type { PipelineCache } from '../gpu/pipelines';
import { Plan, Recorder, type StepProfile } from '../gpu/plan';
import type { ShaderVariant } from '../gpu/shader-assembly';
import { StepUniform } from '../gpu/uniforms';
import { linear } from '../kernels/linear';
import { rmsNorm, rmsNormInPlace } from '../kernels/norm';
import { addInPlace, argmax, embed, rope, swiglu } from '../kernels/pointwise';
import type { KvCache } from '../kv/types';
import { Activations, type LogitsMode } from './activations';
import type { ModelConfig } from './config';
import { ropeInverseFrequencies } from './rope-frequencies';
import type { ModelWeights } from './weights';

const MAX_CACHED_PLANS = 8;
/** GPUMapMode.READ, spelled out so this module loads before GPU globals exist. */
const MAP_READ = 1;

/** What one step returns: the greedy next token, and logits when asked for. */
export interface StepOutput {
  /** argmax of the last position's logits (when logits were computed). */
  nextToken: number;
  /** f32 [rows, vocab] when the step was asked to read logits back. */
  logits?: Float32Array;
}

/** A loaded model bound to a device, a KV cache and its scratch space. */
export class LlamaModel {
  private readonly act: Activations;
  private readonly step: StepUniform;
  private readonly fixed: BufferGroup;
  private readonly invFreq: GPUBuffer /* f32 [headDim / 2] */;
  private readonly plans = new Map<string, Plan>();
  /** Benchmarks only: how the next steps are profiled (timestamps or repeated attention); null normally. */
  profile: StepProfile | null = null;

  constructor(
    private readonly gpu: GpuContext,
    private readonly pipelines: PipelineCache,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    private cache: KvCache,
    private readonly variant: ShaderVariant,
    /** Largest step (prefill chunk) in tokens. */
    readonly maxStepTokens: number,
    /** Rows of logits kept: 1 normally, maxStepTokens when every position's logits are wanted (tests, eval). */
    logitRows = 1,
  ) {
    this.act = new Activations(gpu.device, config, maxStepTokens, logitRows);
    this.fixed = new BufferGroup(gpu.device, 'model-constants');
    this.step = new StepUniform(gpu.device, this.fixed);
    this.invFreq = this.fixed.upload('rope.inv_freq', ropeInverseFrequencies(config));
  }

  /** The KV cache this model reads and appends to. */
  get kv(): KvCache {
    return this.cache;
  }

  /** Switch to another cache layout; the old one and every plan bound to it are freed. */
  replaceKv(next: KvCache): void {
    for (const p of this.plans.values()) p.destroy();
    this.plans.clear();
    this.cache.destroy();
    this.cache = next;
  }

  /** Bytes of activations and model constants. */
  get activationBytes(): number {
    return this.act.bytes + this.fixed.bytes;
  }

  /** Record one step of `T` tokens: embeddings → decoder layers → logits. */
  private recordForward(rec: Recorder, T: number, logits: LogitsMode): void {
    const { numHeads: H, numKvHeads: Hk, headDim: d, hiddenSize: D, intermediateSize: F, vocabSize: V, rmsEps: eps } = this.config;
    const a = this.act;
    const w = this.weights;

    embed(rec, a.ids, w.embed, a.x, T);
    w.layers.forEach((layer, l) => {
      // h = RMSNorm(x); q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ (+ biases)
      rmsNorm(rec, a.x, layer.attnNorm, a.h, T, eps);
      linear(rec, a.h, layer.wq, a.q, T, layer.bq);
      linear(rec, a.h, layer.wk, a.k, T, layer.bk);
      linear(rec, a.h, layer.wv, a.v, T, layer.bv);
      if (layer.qNorm && layer.kNorm) {
        rmsNormInPlace(rec, a.q, layer.qNorm, T * H, eps);
        rmsNormInPlace(rec, a.k, layer.kNorm, T * Hk, eps);
      }
      rope(rec, a.q, this.invFreq, T, H, d);
      rope(rec, a.k, this.invFreq, T, Hk, d);
      // attn = softmax(q·Kᵀ/√d)·V over the cache; the cache appends this step's k, v
      rec.section('attention', () => this.kv.recordAttention(rec, l, { q: a.q, k: a.k, v: a.v, out: a.attn, tokens: T }));
      // x = x + attn·Woᵀ
      linear(rec, a.attn, layer.wo, a.h, T);
      addInPlace(rec, a.x, a.h, T * D);
      // x = x + (silu(h·Wgᵀ) ⊙ h·Wuᵀ)·Wdᵀ with h = RMSNorm(x)
      rmsNorm(rec, a.x, layer.ffnNorm, a.h, T, eps);
      linear(rec, a.h, layer.wGate, a.gate, T);
      linear(rec, a.h, layer.wUp, a.up, T);
      swiglu(rec, a.gate, a.up, T * F);
      linear(rec, a.gate, layer.wDown, a.h, T);
      addInPlace(rec, a.x, a.h, T * D);
    });
    if (logits === 'none') return;
    // logits = RMSNorm(x)·Wlmᵀ, for the last position only unless every row is wanted
    const rows = logits === 'all' ? T : 1;
    rmsNorm(rec, a.x, w.finalNorm, a.h, rows, eps, T - rows);
    linear(rec, a.h, w.lmHead, a.logits, rows);
    argmax(rec, a.logits, V, rows - 1, a.token);
  }

  private plan(T: number, logits: LogitsMode): Plan {
    const key = `${T}|${logits}|${this.kv.generation}`;
    let plan = this.plans.get(key);
    if (plan) {
      this.plans.delete(key);
      this.plans.set(key, plan);
      return plan;
    }
    // Plans of an older cache generation hold bind groups to freed buffers; the rest are evicted LRU.
    for (const [k, old] of this.plans) {
      if (!k.endsWith(`|${this.kv.generation}`)) {
        old.destroy();
        this.plans.delete(k);
      }
    }
    while (this.plans.size >= MAX_CACHED_PLANS) {
      const [k, old] = this.plans.entries().next().value as [string, Plan];
      old.destroy();
      this.plans.delete(k);
    }
    const rec = new Recorder(this.gpu.device, this.pipelines, this.gpu.caps, this.variant, this.step, new BufferGroup(this.gpu.device, `plan ${key}`));
    this.recordForward(rec, T, logits);
    plan = rec.finish(T);
    this.plans.set(key, plan);
    return plan;
  }

  /**
   * Run tokens at positions kv.length … kv.length + T − 1 and append them to the cache.
   * `read` chooses what comes back: nothing, the greedy token, or logits of the last or every row.
   */
  async forward(tokens: number[], read: 'none' | 'token' | 'last-logits' | 'all-logits'): Promise<StepOutput> {
    const T = tokens.length;
    if (T === 0 || T > this.maxStepTokens) throw new RangeError(`step of ${T} tokens; expected 1..${this.maxStepTokens}`);
    const mode: LogitsMode = read === 'none' ? 'none' : read === 'all-logits' ? 'all' : 'last';
    if (mode === 'all' && T > this.act.logitRows) throw new RangeError(`all-logits needs logitRows >= ${T}`);
    const pos0 = this.kv.length;
    this.kv.reserve(pos0 + T);
    const plan = this.plan(T, mode);
    const device = this.gpu.device;
    device.queue.writeBuffer(this.act.ids, 0, new Uint32Array(tokens));
    this.step.write(pos0, T);
    const encoder = device.createCommandEncoder({ label: `step T=${T}` });
    plan.encodeStep(encoder, this.profile);
    const logitBytes = (mode === 'all' ? T : 1) * this.config.vocabSize * 4;
    if (read !== 'none') encoder.copyBufferToBuffer(this.act.token, 0, this.act.tokenReadback, 0, 4);
    if (read === 'last-logits' || read === 'all-logits') {
      encoder.copyBufferToBuffer(this.act.logits, 0, this.act.logitsReadback, 0, logitBytes);
    }
    device.queue.submit([encoder.finish()]);
    this.kv.commit(T);
    if (read === 'none') return { nextToken: -1 };

    await this.act.tokenReadback.mapAsync(MAP_READ);
    const nextToken = new Uint32Array(this.act.tokenReadback.getMappedRange())[0];
    this.act.tokenReadback.unmap();
    if (read === 'token') return { nextToken };
    await this.act.logitsReadback.mapAsync(MAP_READ, 0, logitBytes);
    const logits = new Float32Array(this.act.logitsReadback.getMappedRange(0, logitBytes).slice(0));
    this.act.logitsReadback.unmap();
    return { nextToken, logits };
  }

  /** Wait for all submitted GPU work (used by benchmarks). */
  async sync(): Promise<void> {
    await this.gpu.device.queue.onSubmittedWorkDone();
  }

  /** Free activations, constants, plans and the KV cache. Weights are freed by their owner. Safe to call twice. */
  destroy(): void {
    for (const p of this.plans.values()) p.destroy();
    this.plans.clear();
    this.act.destroy();
    this.fixed.destroy();
    this.cache.destroy();
  }
}
