/**
 * The fused decode step for small models (shaders/decode_fused.wgsl): one workgroup runs several decoder
 * layers of a one-token step, so a step costs ceil(layers / slots) dispatches instead of ~8 per layer. It
 * applies when every weight is one float buffer of the shader's weight type, the model is small (its weights
 * are copied once into one packed buffer this class owns), its activations fit one workgroup's shared memory,
 * and the KV cache is the plain `full` layout (the caller checks that). Everything else takes the plan of
 * separate kernels, which writes the same cache.
 */
import { BufferGroup } from '../gpu/buffers';
import type { GpuCaps } from '../gpu/device';
import type { Binding, Recorder } from '../gpu/plan';
import { f32 } from '../gpu/uniforms';
import type { WeightMatrix } from '../gpu/tensor';

/** Weights of the packed copy above which the fused step is not used: one workgroup streams them all. */
export const FUSED_MAX_WEIGHT_BYTES = 8 * 2 ** 20;
/** Layer slots (K/V binding pairs) the shader declares (flags KV2 .. KV6). */
const MAX_SLOTS = 6;
/** Storage bindings besides the K/V pairs: weights, x_state, ids, logits. */
const FIXED_STORAGE_BINDINGS = 4;
/**
 * Invocations per workgroup. CPU adapters run a workgroup on one thread, a SIMD group of 4–8 lanes at a time,
 * switching between the groups at every barrier (on SwiftShader ~1 ms of a 2.5 ms stories260k step at 64
 * invocations, 1.67 ms at 8, 1.56 ms at 4), so there one group does all the work; elsewhere the invocations run in parallel.
 */
const WG_SOFTWARE = 4;
const WG_HARDWARE = 256;
/** Head dims up to which attention keeps its accumulator in registers (SMALL_D4). */
const SMALL_HEAD_DIM = 16;
/** Head dims up to which query heads of one KV head share each K/V row load in pairs (PAIRED). */
const PAIRED_HEAD_DIM = 8;
/** RoPE inverse frequencies the uniform holds (array<vec4f, 32>). */
const MAX_HALF_DIM = 128;

/** The model dimensions the fused step needs (the fields of ModelConfig of those names). */
export type FusedModelShape = Record<'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize' | 'rmsEps', number>;

/** One layer's tensors as the fused step reads them (the model's LayerWeights has these fields). */
export type FusedLayerWeights = Record<'attnNorm' | 'wq' | 'wk' | 'wv' | 'wo' | 'ffnNorm' | 'wGate' | 'wUp' | 'wDown', WeightMatrix> &
  Partial<Record<'bq' | 'bk' | 'bv' | 'qNorm' | 'kNorm', WeightMatrix>>;

/** All tensors of the model. */
export interface FusedWeights {
  embed: WeightMatrix;
  layers: FusedLayerWeights[];
  finalNorm: WeightMatrix;
  lmHead: WeightMatrix;
}

/** How the fused step is laid out on this adapter. */
export interface FusedGeometry {
  workgroupSize: number;
  /** Attention tasks per head (each takes every partialsPerHead-th slot); 1 on CPU adapters. */
  partialsPerHead: number;
  /** Layers per dispatch (K/V binding pairs). */
  layerSlots: number;
  /** f32 offsets of the shared-memory regions (multiples of 4), and its total size. */
  shared: { xn: number; qkv: number; att: number; ff: number; part: number; total: number };
}

/** The adapter limits the geometry depends on. */
export type FusedLimits = Pick<GpuCaps, 'softwareAdapter' | 'maxComputeWorkgroupStorageSize' | 'maxComputeInvocationsPerWorkgroup' | 'maxStorageBuffersPerShaderStage'> &
  Partial<Pick<GpuCaps, 'maxStorageBufferBindingSize'>>;

/** The fused step's geometry for a model shape on an adapter, or null when the shape does not fit it. */
export function fusedGeometry(m: FusedModelShape, limits: FusedLimits): FusedGeometry | null {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hk, headDim: d } = m;
  if ([D, F, d].some((n) => n % 4 !== 0) || d / 2 > MAX_HALF_DIM || H % Hk !== 0) return null;
  const workgroupSize = Math.min(limits.softwareAdapter ? WG_SOFTWARE : WG_HARDWARE, limits.maxComputeInvocationsPerWorkgroup);
  const layerSlots = Math.min(MAX_SLOTS, m.numLayers, Math.floor(((limits.maxStorageBuffersPerShaderStage ?? 8) - FIXED_STORAGE_BINDINGS) / 2));
  if (layerSlots < 1) return null;
  const xn = D;
  const qkv = xn + D;
  const att = qkv + (H + 2 * Hk) * d;
  const ff = att + H * d;
  const part = ff + F;
  // Shared bytes: sh (f32, whole vec4s) plus best_v / best_i (WG each) and one atomic (rounded to 16 bytes).
  const free = limits.maxComputeWorkgroupStorageSize / 4 - part - 2 * workgroupSize - 4;
  const perHead = limits.softwareAdapter ? 1 : Math.max(1, Math.floor(workgroupSize / H));
  const partialsPerHead = Math.min(perHead, Math.floor(free / (H * (d + 4))));
  if (partialsPerHead < 1) return null;
  return { workgroupSize, partialsPerHead, layerSlots, shared: { xn, qkv, att, ff, part, total: part + H * partialsPerHead * (d + 4) } };
}

/** Buffers of one fused step besides the weights. */
export interface FusedStepIO {
  ids: GPUBuffer /* u32 [1]: the step's token in, the argmax out */;
  x: GPUBuffer /* f32 [hidden]: the residual stream between dispatches */;
  logits: GPUBuffer /* f32 [vocab] */;
  /** Per layer: the `full` cache's K and V, kvt [capacity, kvHeads, headDim]. */
  kv: ReadonlyArray<{ k: GPUBuffer; v: GPUBuffer }>;
  step: GPUBuffer /* the Step uniform */;
}

/** Element offsets of a layer's tensors in the packed buffer (relative to the layer's base). */
type LayerOffsets = Record<'attnNorm' | 'wqkv' | 'bqkv' | 'qNorm' | 'kNorm' | 'wo' | 'ffnNorm' | 'gate' | 'up' | 'down', number>;

/** The packed weights and geometry of the fused decode step. Owns the packed buffer. */
export class FusedDecode {
  private readonly owner: BufferGroup;
  private readonly packed: GPUBuffer /* wt [elements]: every tensor at its offset */;
  private readonly offsets: { embed: number; lmHead: number; finalNorm: number; layerStride: number; layer: LayerOffsets };
  private readonly hasBias: boolean;
  private readonly qkNorm: boolean;

  private constructor(
    device: GPUDevice,
    private readonly shape: FusedModelShape,
    weights: FusedWeights,
    private readonly geometry: FusedGeometry,
    private readonly invFreq: Float32Array,
  ) {
    const elemBytes = weights.embed.dtype === 'f16' ? 2 : 4;
    let cursor = 0;
    const place: Array<[WeightMatrix, number]> = [];
    const put = (m: WeightMatrix): number => {
      const at = cursor;
      place.push([m, at]);
      cursor += Math.ceil((m.rows * m.cols) / 4) * 4;
      return at;
    };
    const l0 = weights.layers[0];
    this.hasBias = Boolean(l0.bq);
    this.qkNorm = Boolean(l0.qNorm && l0.kNorm);
    const embed = put(weights.embed);
    const lmHead = weights.lmHead === weights.embed ? embed : put(weights.lmHead);
    const finalNorm = put(weights.finalNorm);
    const layerBase = cursor;
    let layer: LayerOffsets | null = null;
    for (const w of weights.layers) {
      const start = cursor;
      const rel = (at: number) => at - start;
      const wqkv = rel(put(w.wq));
      put(w.wk);
      put(w.wv);
      const bqkv = w.bq && w.bk && w.bv ? rel(put(w.bq)) : 0;
      if (w.bq && w.bk && w.bv) {
        // Contiguous: each bias is a multiple of 4 long (fusedGeometry checks H·d and Hk·d).
        put(w.bk);
        put(w.bv);
      }
      const offsets: LayerOffsets = {
        attnNorm: rel(put(w.attnNorm)), wqkv, bqkv,
        qNorm: w.qNorm ? rel(put(w.qNorm)) : 0, kNorm: w.kNorm ? rel(put(w.kNorm)) : 0,
        wo: rel(put(w.wo)), ffnNorm: rel(put(w.ffnNorm)), gate: rel(put(w.wGate)), up: rel(put(w.wUp)), down: rel(put(w.wDown)),
      };
      layer ??= offsets;
    }
    const layerStride = (cursor - layerBase) / weights.layers.length;
    const base = (o: LayerOffsets): LayerOffsets => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v + layerBase])) as LayerOffsets;
    this.offsets = { embed, lmHead, finalNorm, layerStride, layer: base(layer!) };

    this.owner = new BufferGroup(device, 'fused-decode');
    this.packed = this.owner.create('packed-weights', cursor * elemBytes);
    const encoder = device.createCommandEncoder({ label: 'fused-decode pack' });
    for (const [m, at] of place) {
      const bytes = m.rows * m.cols * elemBytes;
      encoder.copyBufferToBuffer(m.parts[0].buffer, 0, this.packed, at * elemBytes, Math.ceil(bytes / 4) * 4);
    }
    device.queue.submit([encoder.finish()]);
  }

  /**
   * The fused step for these weights, or null when it does not apply: a tensor that is quantized, split over
   * several buffers or of another type than the shader's weights, layers that differ, weights over
   * FUSED_MAX_WEIGHT_BYTES or one storage binding, or a shape the adapter's limits cannot hold.
   */
  static create(device: GPUDevice, shape: FusedModelShape, weights: FusedWeights, weightType: 'f32' | 'f16', limits: FusedLimits, invFreq: Float32Array): FusedDecode | null {
    const geometry = fusedGeometry(shape, limits);
    if (!geometry) return null;
    const tensors = [weights.embed, weights.finalNorm, weights.lmHead, ...weights.layers.flatMap((l) => (Object.values(l) as Array<WeightMatrix | undefined>).filter((t): t is WeightMatrix => Boolean(t)))];
    // Products here take f32 inputs: weights that round their input first (llama.cpp numerics) run the separate kernels.
    if (!tensors.every((t) => t.dtype === weightType && t.parts.length === 1 && !t.inputRounding)) return null;
    const keys = (l: FusedLayerWeights) => Object.keys(l).filter((k) => l[k as keyof FusedLayerWeights]).sort().join();
    if (!weights.layers.every((l) => keys(l) === keys(weights.layers[0]))) return null;
    const bq = weights.layers[0].bq;
    if (bq && (weights.layers[0].bk === undefined || weights.layers[0].bv === undefined)) return null;
    const bytes = tensors.reduce((n, t) => n + t.rows * t.cols * (weightType === 'f16' ? 2 : 4), 0);
    if (bytes > Math.min(FUSED_MAX_WEIGHT_BYTES, limits.maxStorageBufferBindingSize ?? Infinity)) return null;
    return new FusedDecode(device, shape, weights, geometry, invFreq);
  }

  /** Record one greedy decode step (the token in io.ids[0]; its argmax replaces it). */
  record(rec: Recorder, io: FusedStepIO): void {
    const g = this.geometry;
    const s = this.shape;
    const o = this.offsets;
    // One pipeline per slot count (the last dispatch may run fewer layers): a writable buffer bound twice is invalid.
    const pipelineFor = (count: number) => {
      const flags: Record<string, boolean> = { ...(rec.variant.flags ?? {}) };
      for (let slot = 2; slot <= count; slot++) flags[`KV${slot}`] = true;
      return rec.pipelines.get({
        shader: 'decode_fused',
        variant: { ...rec.variant, flags },
        overrides: { WG: g.workgroupSize, SH_N: g.shared.total / 4, PART_P: g.partialsPerHead, SMALL_D4: s.headDim <= SMALL_HEAD_DIM ? s.headDim / 4 : 0, PAIRED: s.headDim <= PAIRED_HEAD_DIM && (s.numHeads / s.numKvHeads) % 2 === 0, HAS_BIAS: this.hasBias, QK_NORM: this.qkNorm },
      });
    };
    const inv: Record<string, ReturnType<typeof f32>> = {};
    for (let j = 0; j < MAX_HALF_DIM; j++) inv[`inv_freq${j}`] = f32(this.invFreq[j] ?? 0);
    const slots = g.layerSlots;
    for (let first = 0; first < s.numLayers; first += slots) {
      const count = Math.min(slots, s.numLayers - first);
      const params = rec.uniforms.struct({
        hidden: s.hiddenSize, heads: s.numHeads, kv_heads: s.numKvHeads, head_dim: s.headDim,
        ffn: s.intermediateSize, vocab: s.vocabSize, first_layer: first, layer_count: count,
        is_first: first === 0 ? 1 : 0, is_last: first + count === s.numLayers ? 1 : 0, eps: f32(s.rmsEps), attn_scale: f32(1 / Math.sqrt(s.headDim)),
        embed_off: o.embed, lm_off: o.lmHead, final_norm_off: o.finalNorm, layer_stride: o.layerStride,
        attn_norm_off: o.layer.attnNorm, wqkv_off: o.layer.wqkv, bqkv_off: o.layer.bqkv, q_norm_off: o.layer.qNorm,
        k_norm_off: o.layer.kNorm, wo_off: o.layer.wo, ffn_norm_off: o.layer.ffnNorm, gate_off: o.layer.gate,
        up_off: o.layer.up, down_off: o.layer.down, sh_xn: g.shared.xn, sh_qkv: g.shared.qkv,
        sh_att: g.shared.att, sh_ff: g.shared.ff, sh_part: g.shared.part, _p0: 0,
        ...inv,
      });
      const bindings: Record<number, Binding> = { 0: params, 1: io.step, 2: this.packed, 3: io.x, 4: io.ids, 5: io.logits };
      for (let slot = 0; slot < count; slot++) {
        bindings[6 + 2 * slot] = io.kv[first + slot].k;
        bindings[7 + 2 * slot] = io.kv[first + slot].v;
      }
      rec.dispatch(`decode_fused L${first}-${first + count - 1}`, pipelineFor(count), bindings, [1, 1, 1]);
    }
  }

  /** Bytes of the packed weights. */
  get bytes(): number {
    return this.owner.bytes;
  }

  /** Free the packed weights. Safe to call twice. */
  destroy(): void {
    this.owner.destroy();
  }
}
