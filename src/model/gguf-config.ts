/**
 * GGUF metadata to the engine's ModelConfig, GGUF tensor names to Hugging Face names, and the q/k row
 * permutation llama.cpp's converter applies to Llama models. Pure: no DOM, no GPU.
 *
 * Tensor dims in GGUF are ggml order: dims[0] is the contiguous (column, input) dimension and dims[1] the
 * rows (outputs), so a HF [out, in] matrix is a GGUF [in, out] tensor with the same bytes.
 */
import { ModelFormatError, UnsupportedArchitectureError } from '../errors';
import type { Architecture, Llama3RopeScaling, ModelConfig } from './config';
import type { GgufValue } from './gguf';
import { ropeInverseFrequencies } from './rope-frequencies';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, layerTensorNames } from './tensor-names';

/** GGUF `general.architecture` values this engine runs (Mistral GGUFs say "llama"). */
export const GGUF_ARCHITECTURES = ['llama', 'qwen2', 'qwen3'] as const;

/** Llama 3.1-style per-frequency RoPE divisors, written by llama.cpp's converter instead of rope_scaling keys. */
export const GGUF_ROPE_FREQS = 'rope_freqs.weight';

type Meta = ReadonlyMap<string, GgufValue>;

/** Options for {@link configFromGguf}. */
export interface GgufConfigOptions {
  /** The f32 values of `rope_freqs.weight`, required when that tensor exists. */
  ropeFreqs?: Float32Array;
}

function bad(what: string): ModelFormatError {
  return new ModelFormatError(`GGUF metadata: ${what}. The file is incomplete or not a model this engine can run; pick another file.`);
}

/** A number, or the common value of a per-layer array (llama.cpp allows either for head counts and FFN size). */
function numberOf(meta: Meta, key: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => x === v[0]) && typeof v[0] === 'number') return v[0];
  if (Array.isArray(v)) throw new UnsupportedArchitectureError(`GGUF metadata "${key}" differs between layers (${v.slice(0, 8).join(', ')}…); this engine needs the same value in every layer.`);
  throw bad(`"${key}" should be a number, got ${typeof v}`);
}

function positiveInt(meta: Meta, key: string, fallback?: number): number {
  const v = numberOf(meta, key) ?? fallback;
  if (v === undefined) throw bad(`"${key}" is missing`);
  if (!Number.isInteger(v) || v <= 0) throw bad(`"${key}" must be a positive integer, got ${v}`);
  return v;
}

function finite(meta: Meta, key: string, fallback?: number): number {
  const v = numberOf(meta, key) ?? fallback;
  if (v === undefined) throw bad(`"${key}" is missing`);
  if (!Number.isFinite(v)) throw bad(`"${key}" must be a finite number, got ${v}`);
  return v;
}

function tokenId(meta: Meta, key: string): number | null {
  const v = meta.get(key);
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
}

/**
 * Build the ModelConfig of a GGUF model from its metadata and tensor names. Throws
 * UnsupportedArchitectureError for architectures, MoE or RoPE variants the engine lacks, and ModelFormatError
 * for missing or inconsistent keys.
 */
export function configFromGguf(meta: Meta, tensorNames: readonly string[], options: GgufConfigOptions = {}): ModelConfig {
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') throw bad('"general.architecture" is missing');
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UnsupportedArchitectureError(
      `GGUF architecture "${arch}" is not supported (supported: ${GGUF_ARCHITECTURES.join(', ')}; Mistral, SmolLM and TinyLlama are llama). Pick a model of a supported family.`,
    );
  }
  const a = arch as Architecture;
  const experts = numberOf(meta, `${a}.expert_count`) ?? 0;
  if (experts > 0) throw new UnsupportedArchitectureError(`This GGUF is a mixture-of-experts model (${experts} experts), which this engine does not run.`);
  const names = new Set(tensorNames);

  const hiddenSize = positiveInt(meta, `${a}.embedding_length`);
  const numHeads = positiveInt(meta, `${a}.attention.head_count`);
  const numKvHeads = positiveInt(meta, `${a}.attention.head_count_kv`, numHeads);
  if (numHeads % numKvHeads !== 0) throw bad(`head_count (${numHeads}) is not a multiple of head_count_kv (${numKvHeads})`);
  if (numberOf(meta, `${a}.attention.key_length`) === undefined && hiddenSize % numHeads !== 0) {
    throw bad(`there is no key_length and embedding_length (${hiddenSize}) is not a multiple of head_count (${numHeads})`);
  }
  const headDim = positiveInt(meta, `${a}.attention.key_length`, hiddenSize / numHeads);
  const valueDim = positiveInt(meta, `${a}.attention.value_length`, headDim);
  if (valueDim !== headDim) throw new UnsupportedArchitectureError(`key_length ${headDim} differs from value_length ${valueDim}; this engine needs them equal.`);
  const ropeDims = positiveInt(meta, `${a}.rope.dimension_count`, headDim);
  if (ropeDims !== headDim) throw new UnsupportedArchitectureError(`RoPE covers ${ropeDims} of ${headDim} head dimensions; partial RoPE is not supported.`);

  const ropeTheta = finite(meta, `${a}.rope.freq_base`, 10000);
  const tokens = meta.get('tokenizer.ggml.tokens');
  const vocabSize = positiveInt(meta, `${a}.vocab_size`, Array.isArray(tokens) ? tokens.length : undefined);
  const eosTokenIds = [...new Set(['eos', 'eot', 'eom'].map((k) => tokenId(meta, `tokenizer.ggml.${k}_token_id`)).filter((x): x is number => x !== null))];

  return {
    architecture: a,
    hiddenSize,
    intermediateSize: positiveInt(meta, `${a}.feed_forward_length`),
    numLayers: positiveInt(meta, `${a}.block_count`),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositions: positiveInt(meta, `${a}.context_length`),
    rmsEps: finite(meta, `${a}.attention.layer_norm_rms_epsilon`),
    ropeTheta,
    ropeScaling: ropeScalingOf(meta, a, names.has(GGUF_ROPE_FREQS), options.ropeFreqs, headDim, ropeTheta),
    tieEmbeddings: !names.has('output.weight'),
    qkvBias: a === 'qwen2' || names.has('blk.0.attn_q.bias'),
    qkNorm: a === 'qwen3',
    bosTokenId: tokenId(meta, 'tokenizer.ggml.bos_token_id'),
    eosTokenIds,
  };
}

function ropeScalingOf(meta: Meta, a: string, hasFreqs: boolean, freqs: Float32Array | undefined, headDim: number, theta: number): Llama3RopeScaling | null {
  const type = meta.get(`${a}.rope.scaling.type`);
  const factor = numberOf(meta, `${a}.rope.scaling.factor`) ?? numberOf(meta, `${a}.rope.scale_linear`) ?? 1;
  if (type !== undefined && type !== 'none' && !(type === 'linear' && factor === 1)) {
    throw new UnsupportedArchitectureError(`RoPE scaling "${String(type)}" (factor ${factor}) is not supported (supported: Llama 3 per-frequency scaling).`);
  }
  if (!hasFreqs) return null;
  if (!freqs) {
    throw new UnsupportedArchitectureError(`This GGUF has Llama 3.1-style RoPE factors (${GGUF_ROPE_FREQS}); the loader must pass their values to configFromGguf.`);
  }
  return llama3ScalingFromRopeFreqs(freqs, headDim, theta);
}

/**
 * Recover Llama 3 RoPE scaling parameters from llama.cpp's `rope_freqs` divisors. The divisors depend only
 * on factor, orig/(high−low) and low/(high−low), so low_freq_factor is taken as 1 (as in every Llama 3.x);
 * the result is checked by recomputing the divisors. Returns null when every divisor is 1.
 */
export function llama3ScalingFromRopeFreqs(freqs: Float32Array, headDim: number, ropeTheta: number): Llama3RopeScaling | null {
  if (freqs.length !== headDim / 2) throw bad(`${GGUF_ROPE_FREQS} has ${freqs.length} values, expected head_dim/2 = ${headDim / 2}`);
  const factor = Math.max(...freqs);
  if (Math.abs(factor - 1) < 1e-6) return null;
  const base = ropeInverseFrequencies({ headDim, ropeTheta, ropeScaling: null });
  // smooth s = (1/f − 1/factor)/(1 − 1/factor) is linear in 1/wavelen between the two plateaus: s = A/wavelen + B.
  const pts: Array<[number, number]> = [];
  for (let i = 0; i < freqs.length; i++) {
    if (freqs[i] > 1 + 1e-4 && freqs[i] < factor * (1 - 1e-4)) {
      pts.push([base[i] / (2 * Math.PI), (1 / freqs[i] - 1 / factor) / (1 - 1 / factor)]);
    }
  }
  const unsupported = new UnsupportedArchitectureError(`${GGUF_ROPE_FREQS} does not follow Llama 3 RoPE scaling; this engine cannot run it.`);
  if (pts.length < 2) throw unsupported;
  const [x0, y0] = pts[0];
  const [x1, y1] = pts[pts.length - 1];
  const A = (y1 - y0) / (x1 - x0);
  const B = y0 - A * x0;
  if (!(B < 0) || !(A > 0)) throw unsupported;
  const high = 1 - 1 / B;
  const orig = -A / B;
  const scaling: Llama3RopeScaling = {
    type: 'llama3',
    factor: Math.fround(factor) === factor ? roundNear(factor) : factor,
    lowFreqFactor: 1,
    highFreqFactor: roundNear(high),
    originalMaxPositions: Math.round(orig),
  };
  const again = llama3RopeFreqs(headDim, ropeTheta, scaling);
  for (let i = 0; i < freqs.length; i++) if (Math.abs(again[i] - freqs[i]) > 1e-3 * freqs[i]) throw unsupported;
  return scaling;
}

/** Snap to a nearby value with few decimals (f32 storage blurs 4 into 3.9999998). */
function roundNear(x: number): number {
  const r = Math.round(x * 1000) / 1000;
  return Math.abs(r - x) < 1e-4 * Math.abs(x) ? r : x;
}

/** llama.cpp's `rope_freqs` divisors for a Llama 3 scaling: base inverse frequency / scaled inverse frequency. */
export function llama3RopeFreqs(headDim: number, ropeTheta: number, scaling: Llama3RopeScaling): Float32Array {
  const base = ropeInverseFrequencies({ headDim, ropeTheta, ropeScaling: null });
  const scaled = ropeInverseFrequencies({ headDim, ropeTheta, ropeScaling: scaling });
  return base.map((b, i) => b / scaled[i]);
}

const LAYER_PARTS: Record<string, keyof ReturnType<typeof layerTensorNames>> = {
  'attn_norm.weight': 'attnNorm',
  'attn_q.weight': 'wq',
  'attn_k.weight': 'wk',
  'attn_v.weight': 'wv',
  'attn_output.weight': 'wo',
  'attn_q.bias': 'bq',
  'attn_k.bias': 'bk',
  'attn_v.bias': 'bv',
  'attn_q_norm.weight': 'qNorm',
  'attn_k_norm.weight': 'kNorm',
  'ffn_norm.weight': 'ffnNorm',
  'ffn_gate.weight': 'wGate',
  'ffn_up.weight': 'wUp',
  'ffn_down.weight': 'wDown',
};
const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': EMBED_TOKENS,
  'output_norm.weight': FINAL_NORM,
  'output.weight': LM_HEAD,
};

/** The Hugging Face name (as in tensor-names.ts) of a GGUF tensor, or null for tensors the engine does not use. */
export function hfNameOfGgufTensor(name: string): string | null {
  if (name in GLOBAL_NAMES) return GLOBAL_NAMES[name];
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (!m) return null;
  const part = LAYER_PARTS[m[2]];
  return part ? layerTensorNames(Number(m[1]))[part] : null;
}

/** The GGUF name of a Hugging Face tensor (the inverse of {@link hfNameOfGgufTensor}), or null. */
export function ggufNameOfHfTensor(name: string): string | null {
  for (const [g, h] of Object.entries(GLOBAL_NAMES)) if (h === name) return g;
  const m = /^model\.layers\.(\d+)\./.exec(name);
  if (!m) return null;
  const names = layerTensorNames(Number(m[1]));
  for (const [g, part] of Object.entries(LAYER_PARTS)) if (names[part] === name) return `blk.${m[1]}.${g}`;
  return null;
}

/**
 * Whether llama.cpp's converter permuted the q/k rows of this architecture into interleaved-pair RoPE
 * order (Llama-family models use ggml's "normal" RoPE; qwen2/qwen3 use NeoX rotate-half and are unpermuted).
 */
export function ggufQkInterleaved(architecture: Architecture): boolean {
  return architecture === 'llama' || architecture === 'mistral';
}

/**
 * The HF row held by GGUF row `rowGguf` of an interleaved q/k weight (or bias): GGUF row h·d + 2i + j
 * holds HF row h·d + j·(d/2) + i, for head h, head dim d, i < d/2, j ∈ {0, 1}.
 */
export function undoQkInterleave(rowGguf: number, headDim: number): number {
  const h = Math.floor(rowGguf / headDim);
  const r = rowGguf % headDim;
  return h * headDim + (r % 2) * (headDim / 2) + (r >> 1);
}

/** The GGUF row that holds HF row `rowHf` (the inverse of {@link undoQkInterleave}). */
export function applyQkInterleave(rowHf: number, headDim: number): number {
  const h = Math.floor(rowHf / headDim);
  const r = rowHf % headDim;
  const half = headDim / 2;
  return h * headDim + 2 * (r % half) + Math.floor(r / half);
}

/** Rows of `src` (each `rowBytes` bytes, any dtype incl. ggml blocks) reordered: output row k is input row `from(k)`. */
function permuteRows(src: Uint8Array, rowBytes: number, headDim: number, from: (row: number, headDim: number) => number): Uint8Array {
  if (rowBytes <= 0 || src.length % rowBytes !== 0) throw new RangeError(`${src.length} bytes is not a whole number of ${rowBytes}-byte rows`);
  const rows = src.length / rowBytes;
  if (headDim % 2 !== 0 || rows % headDim !== 0) throw new RangeError(`${rows} rows is not a whole number of heads of even size ${headDim}`);
  const out = new Uint8Array(src.length);
  for (let k = 0; k < rows; k++) {
    const at = from(k, headDim) * rowBytes;
    out.set(src.subarray(at, at + rowBytes), k * rowBytes);
  }
  return out;
}

/** A GGUF-interleaved q/k weight or bias (rows of `rowBytes` bytes) in HF row order. */
export function qkRowsGgufToHf(src: Uint8Array, rowBytes: number, headDim: number): Uint8Array {
  return permuteRows(src, rowBytes, headDim, applyQkInterleave);
}

/** A HF q/k weight or bias (rows of `rowBytes` bytes) in GGUF's interleaved row order, as llama.cpp's converter writes it. */
export function qkRowsHfToGguf(src: Uint8Array, rowBytes: number, headDim: number): Uint8Array {
  return permuteRows(src, rowBytes, headDim, undoQkInterleave);
}
