/**
 * Cross-layer merged KV layouts `merge` and `merge+kivi` (docs/kv-compression.md §3). Layers from the
 * start layer S on are merged in adjacent pairs (S, S+1), (S+2, S+3), …: per token, KV head and tensor
 * one unit direction (SLERP, t = 0.6) plus both norms in f16; the top-γ most distant tokens of each
 * R-token block keep both originals. Directions are stored in full precision (`merge`) or KIVI-quantized
 * (`merge+kivi`). Layers below S (and an unpaired last layer) use the base layout: full or KIVI.
 * The pair layout is described in shaders/kv_merge.wgsl; attention reads it in place (attention_merged.wgsl).
 */
import { flatDispatch, type Binding, type Recorder } from '../gpu/plan';
import { f32, type UniformSlot } from '../gpu/uniforms';
import type { KvLayerStats } from '../worker/api';
import { copyOnGpu, grownCapacity } from './growth';
import { keyScaleCount, valueScaleCount, wordsPerRow, type QuantFormat } from './quant-format';
import { quantParamsFields } from './quant-cache';
import { GrowingKvCache } from './growing-cache';
import { recordRowAttention } from './row-attention';
import type { AttentionIO, KvCache, KvShape } from './types';

/** Parameters of a merged layout. */
export interface MergeOptions {
  /** First merged layer S. */
  startLayer: number;
  /** SLERP interpolation weight t. */
  t: number;
  /** Fraction γ of each R-token block kept unmerged. */
  retention: number;
  /** R: tokens per merge block, held in full precision until their block completes. */
  residual: number;
  /** KIVI format of the merged directions (`merge+kivi`); absent for `merge`. */
  directionFormat?: QuantFormat;
}

interface PairBuffers {
  ring: GPUBuffer /* kvt [2 layers, 2 tensors, W, E] */;
  dirs: GPUBuffer /* kvt [capacity, 2, E] (merge) or u32 codes [capacity, kWords + vWords] (merge+kivi) */;
  scales: GPUBuffer | null /* u32 (f16 s, f16 min) [K region | V region] (merge+kivi) */;
  dirRing: GPUBuffer | null /* kvt [2 tensors, W, E] directions awaiting quantization (merge+kivi) */;
  meta: GPUBuffer /* u32 [norms: capacity·2·Hk | slot map: capacity | distance: W] */;
  retained: GPUBuffer /* kvt [capacity / R · k, 2 layers, 2 tensors, E] */;
}

/** The first layer of every merged pair for a model of `numLayers` layers. */
export function mergedPairs(numLayers: number, startLayer: number): number[] {
  const firsts: number[] = [];
  for (let a = startLayer; a + 1 < numLayers; a += 2) firsts.push(a);
  return firsts;
}

/** A cache whose upper layers are merged in pairs over a base layout for the rest. */
export class MergedKvCache extends GrowingKvCache {
  private pairs: PairBuffers[] = [];
  private readonly firsts: number[];
  private readonly baseIndex = new Map<number, number>();
  private readonly ringSlots: number;
  private readonly retainedPerBlock: number;
  private readonly rowElems: number;
  private readonly blockTokens: number;

  constructor(
    device: GPUDevice,
    shape: KvShape,
    private readonly options: MergeOptions,
    /** Bytes of one full-precision element (kvt). */
    private readonly elementBytes: 2 | 4,
    /** Builds the base layout for `numLayers` unmerged layers. */
    makeBase: (baseShape: KvShape) => KvCache,
    mode: string,
  ) {
    super(device, shape, mode);
    const R = options.residual;
    if (!Number.isInteger(R) || R < 1) throw new RangeError(`The merge block R must be a positive integer, got ${R}.`);
    if (!(options.retention >= 0 && options.retention <= 1)) throw new RangeError(`Retention γ must be in [0, 1], got ${options.retention}.`);
    if (!(options.t >= 0 && options.t <= 1)) throw new RangeError(`SLERP t must be in [0, 1], got ${options.t}.`);
    if (shape.numKvHeads * 2 > 64) throw new RangeError('Merged layouts support up to 32 KV heads.');
    this.firsts = mergedPairs(shape.numLayers, options.startLayer);
    const merged = new Set(this.firsts.flatMap((a) => [a, a + 1]));
    for (let l = 0, i = 0; l < shape.numLayers; l++) if (!merged.has(l)) this.baseIndex.set(l, i++);
    this.base = makeBase({ ...shape, numLayers: this.baseIndex.size });
    this.rowElems = shape.numKvHeads * shape.headDim;
    this.ringSlots = R + (shape.maxStepTokens ?? 128);
    this.retainedPerBlock = Math.ceil(options.retention * R);
    const g = options.directionFormat?.keyBlockTokens ?? 1;
    this.blockTokens = Math.ceil(Math.max(64, R) / lcm(R, g)) * lcm(R, g);
  }

  private readonly base: KvCache;

  override get generation(): number {
    return this.gen + this.base.generation;
  }

  private sizes(capacity: number) {
    const E = this.rowElems;
    const f = this.options.directionFormat;
    const words = f ? wordsPerRow(E, f.keyBits) + wordsPerRow(E, f.valueBits) : 0;
    return {
      dirs: f ? capacity * words * 4 : capacity * 2 * E * this.elementBytes,
      kScales: f ? keyScaleCount(f, capacity) * 4 : 0,
      vScales: f ? valueScaleCount(f, capacity) * 4 : 0,
      norms: capacity * 2 * this.shape.numKvHeads * 4,
      slots: capacity * 4,
      retained: (capacity / this.options.residual) * this.retainedPerBlock * 4 * E * this.elementBytes,
    };
  }

  reserve(totalTokens: number): void {
    this.base.reserve(totalTokens);
    if (totalTokens <= this.capacity) return;
    const capacity = grownCapacity(this.capacity, totalTokens, this.blockTokens, this.shape.maxTokens);
    const was = this.sizes(this.capacity);
    const now = this.sizes(capacity);
    const W = this.ringSlots;
    const E = this.rowElems;
    const quant = !!this.options.directionFormat;
    const next: PairBuffers[] = this.firsts.map((a, i) => ({
      ring: this.pairs[i]?.ring ?? this.owner.create(`L${a}+${a + 1}.residual`, 4 * W * E * this.elementBytes),
      dirs: this.owner.create(`L${a}+${a + 1}.merged`, now.dirs),
      scales: quant ? this.owner.create(`L${a}+${a + 1}.scales`, now.kScales + now.vScales) : null,
      dirRing: this.pairs[i]?.dirRing ?? (quant ? this.owner.create(`L${a}+${a + 1}.direction-ring`, 2 * W * E * this.elementBytes) : null),
      meta: this.owner.create(`L${a}+${a + 1}.norms`, now.norms + now.slots + W * 4),
      retained: this.owner.create(`L${a}+${a + 1}.retained`, Math.max(4, now.retained)),
    }));
    type Copy = [GPUBuffer, GPUBuffer, number, number, number];
    const copies: Copy[] = this.pairs.flatMap((old, i): Copy[] => [
      [old.dirs, next[i].dirs, 0, 0, was.dirs],
      [old.meta, next[i].meta, 0, 0, was.norms],
      [old.meta, next[i].meta, was.norms, now.norms, was.slots],
      [old.retained, next[i].retained, 0, 0, was.retained],
      ...(old.scales && next[i].scales
        ? ([
            [old.scales, next[i].scales, 0, 0, was.kScales],
            [old.scales, next[i].scales, was.kScales, now.kScales, was.vScales],
          ] as Copy[])
        : []),
    ]);
    copyOnGpu(this.device, `kv-${this.mode} grow`, copies);
    for (const old of this.pairs) for (const b of [old.dirs, old.scales, old.meta, old.retained]) if (b) this.owner.release(b);
    this.pairs = next;
    this.capacity = capacity;
    this.gen++;
  }

  private mergeParams(rec: Recorder, slot: number, invocations = 0, rowStride = 0): UniformSlot {
    const { numKvHeads, headDim } = this.shape;
    const s = this.sizes(this.capacity);
    return rec.uniforms.alloc([
      this.rowElems, this.options.residual, this.ringSlots, slot,
      numKvHeads, headDim, 0, s.norms / 4,
      (s.norms + s.slots) / 4, this.retainedPerBlock, this.options.directionFormat ? 1 : 0, invocations,
      rowStride, f32(this.options.t), 0, 0,
    ]);
  }

  recordAttention(rec: Recorder, layer: number, io: AttentionIO): void {
    const baseLayer = this.baseIndex.get(layer);
    if (baseLayer !== undefined) return this.base.recordAttention(rec, baseLayer, io);
    const first = this.firsts.indexOf(layer) >= 0 ? layer : layer - 1;
    const slot = layer - first;
    const pair = this.pairs[this.firsts.indexOf(first)];
    const { numHeads, numKvHeads, headDim } = this.shape;
    const T = io.tokens;
    const f = this.options.directionFormat;
    const variant = f ? { ...rec.variant, flags: { ...rec.variant.flags, QUANT_DIRS: true } } : rec.variant;

    // This layer's fresh rows enter the ring, which attention then reads for the unmerged positions.
    const rows = flatDispatch(Math.ceil((T * this.rowElems) / 64), rec.caps.maxComputeWorkgroupsPerDimension);
    const write = rec.pipelines.get({ shader: 'kv_merge', entry: 'ring_write', variant: rec.variant });
    const mpWrite = this.mergeParams(rec, slot, T * this.rowElems, rows.groupsPerRow * 64);
    rec.dispatch(`ring_write L${layer}`, write, { 0: mpWrite, 1: rec.step.buffer, 2: io.k, 3: io.v, 4: pair.ring }, rows.workgroups);

    const mp = this.mergeParams(rec, slot);
    const qp = f ? rec.uniforms.alloc(quantParamsFields(f, this.capacity, this.ringSlots)) : null;
    const bindings: Record<number, Binding> = { 1: rec.step.buffer, 2: io.q, 4: mp, 5: pair.ring, 6: pair.meta, 7: pair.retained, 8: pair.dirs };
    if (qp && pair.scales) Object.assign(bindings, { 9: qp, 10: pair.scales });
    recordRowAttention(rec, { label: `attention_merged L${layer}`, shader: 'attention_merged', variant, bindings, paramsBinding: 0, outBinding: 3, io, heads: numHeads, kvHeads: numKvHeads, headDim, capacity: this.capacity, canSplit: true });
    if (slot === 0) return;

    // After the pair's second layer: merge every completed R block, pick its retained tokens, quantize directions.
    const R = this.options.residual;
    const flushed = T + R;
    const merge = rec.pipelines.get({ shader: 'kv_merge', entry: 'merge_flush', variant: rec.variant });
    const target = pair.dirRing ?? pair.dirs;
    rec.dispatch(`merge_flush L${first}+${layer}`, merge, { 0: mp, 1: rec.step.buffer, 4: pair.ring, 5: target, 6: pair.meta }, [flushed, 1, 1]);
    const retain = rec.pipelines.get({ shader: 'kv_merge', entry: 'retain_select', variant: rec.variant });
    rec.dispatch(`retain_select L${first}+${layer}`, retain, { 0: mp, 1: rec.step.buffer, 4: pair.ring, 6: pair.meta, 7: pair.retained }, [Math.ceil(flushed / R) + 1, 1, 1]);
    if (!f || !qp || !pair.scales || !pair.dirRing) return;
    const E = this.rowElems;
    const passes: Array<[string, boolean, number]> = [
      ['scales_channel', true, Math.ceil(flushed / f.keyBlockTokens + 1) * E],
      ['pack_codes', true, flushed * wordsPerRow(E, f.keyBits)],
      ['scales_token', false, flushed * (E / f.channelGroup)],
      ['pack_codes', false, flushed * wordsPerRow(E, f.valueBits)],
    ];
    for (const [entry, isKey, invocations] of passes) {
      const { workgroups, groupsPerRow } = flatDispatch(Math.ceil(invocations / 64), rec.caps.maxComputeWorkgroupsPerDimension);
      const pipeline = rec.pipelines.get({ shader: 'kv_quant_append', entry, variant: rec.variant });
      const ap = rec.uniforms.alloc([isKey ? 1 : 0, invocations, groupsPerRow * 64, 0]);
      const b: Record<number, Binding> = { 0: qp, 1: ap, 2: rec.step.buffer, 3: io.k, 4: pair.dirRing, 6: pair.scales };
      if (entry === 'pack_codes') b[5] = pair.dirs;
      rec.dispatch(`${entry} dir ${isKey ? 'K' : 'V'} L${first}+${layer}`, pipeline, b, workgroups);
    }
  }

  /** The base layout's step key: its flush passes are dispatched only on steps that flush (the pairs' run every step). */
  override stepKey(pos0: number, tokens: number): string {
    return this.base.stepKey(pos0, tokens);
  }

  override commit(tokens: number): void {
    super.commit(tokens);
    this.base.commit(tokens);
  }

  override reset(): void {
    super.reset();
    this.base.reset();
  }

  layerStats(): KvLayerStats[] {
    const base = this.base.layerStats();
    return Array.from({ length: this.shape.numLayers }, (_, layer) => {
      const b = this.baseIndex.get(layer);
      if (b !== undefined) return base[b] ? { ...base[b], layer } : { layer, components: {}, total: 0 };
      const first = this.firsts.includes(layer) ? layer : layer - 1;
      const p = this.pairs[this.firsts.indexOf(first)];
      const pairedWith = first === layer ? layer + 1 : first;
      if (!p) return { layer, components: {}, total: 0, pairedWith };
      // A pair's buffers serve both of its layers; each layer is charged half.
      const components: Record<string, number> = {
        merged: p.dirs.size / 2,
        scales: (p.scales?.size ?? 0) / 2,
        norms: p.meta.size / 2,
        retained: p.retained.size / 2,
        residual: (p.ring.size + (p.dirRing?.size ?? 0)) / 2,
      };
      return { layer, components, total: Object.values(components).reduce((a, x) => a + x, 0), pairedWith };
    });
  }

  /** Pair buffers, for tests. */
  debugPair(index: number): Readonly<PairBuffers> {
    return this.pairs[index];
  }

  override bufferSizes(): Array<{ label: string; bytes: number }> {
    return [...this.owner.sizes(), ...this.base.bufferSizes()];
  }

  override destroy(): void {
    super.destroy();
    this.base.destroy();
    this.pairs = [];
  }
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}
