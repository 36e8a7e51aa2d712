/**
 * Quantized KV layouts `int8` and `kivi` (docs/kv-compression.md §1): packed codes, f16 (s, min) pairs
 * and a full-precision residual ring per layer, laid out as in shaders/lib/kv_quant.wgsl. Attention
 * reads them in place (attention_quant.wgsl); after it, the step's flushed tokens are quantized and its
 * fresh rows enter the ring (kv_quant_append.wgsl). There is no full-precision copy of the quantized part.
 * Eviction in place drops quantized tokens only (whole G-token key blocks for KIVI), never the residual
 * ring, and a multiple of R tokens at a time, so every ring slot (position % R) and flush boundary stays put.
 */
import { flatDispatch, type Recorder } from '../gpu/plan';
import type { UniformSlot } from '../gpu/uniforms';
import type { KvLayerStats } from '../worker/api';
import type { CompactRegion } from './eviction';
import { copyOnGpu, grownCapacity } from './growth';
import { keyScaleCount, quantizedCount, valueScaleCount, wordsPerRow, type QuantFormat } from './quant-format';
import { GrowingKvCache, type CacheOptions } from './growing-cache';
import { recordRowAttention } from './row-attention';
import type { AttentionIO, EvictionRules, KvShape } from './types';

interface QuantLayer {
  codes: GPUBuffer /* u32 [capacity, kWords + vWords] */;
  scales: GPUBuffer /* u32 (f16 s, f16 min) [K region | V region] */;
  ring: GPUBuffer /* kvt [2, R, E] (4 bytes when R = 0) */;
}

/** A quantized cache: every layer in the same QuantFormat. */
export class QuantKvCache extends GrowingKvCache {
  private layers: QuantLayer[] = [];
  private readonly kWords: number;
  private readonly vWords: number;
  private readonly blockTokens: number;

  constructor(
    device: GPUDevice,
    shape: KvShape,
    readonly format: QuantFormat,
    /** Bytes of one full-precision element in the ring (kvt). */
    private readonly ringElementBytes: 2 | 4,
    mode: string,
    options: CacheOptions = {},
  ) {
    super(device, shape, mode, options);
    this.kWords = wordsPerRow(format.rowElems, format.keyBits);
    this.vWords = wordsPerRow(format.rowElems, format.valueBits);
    this.blockTokens = Math.max(64, format.keyBlockTokens, format.residual);
    if (this.blockTokens % format.keyBlockTokens !== 0) this.blockTokens = Math.ceil(this.blockTokens / format.keyBlockTokens) * format.keyBlockTokens;
  }

  private scaleBytes(capacity: number): number {
    return (keyScaleCount(this.format, capacity) + valueScaleCount(this.format, capacity)) * 4;
  }

  reserve(totalTokens: number): void {
    if (totalTokens <= this.capacity) return;
    this.reserveSaliency();
    const capacity = grownCapacity(this.capacity, totalTokens, this.blockTokens, this.shape.maxTokens);
    const f = this.format;
    const ringBytes = 2 * f.residual * f.rowElems * this.ringElementBytes;
    const next = Array.from({ length: this.shape.numLayers }, (_, l) => ({
      codes: this.owner.create(`L${l}.codes`, capacity * (this.kWords + this.vWords) * 4),
      scales: this.owner.create(`L${l}.scales`, this.scaleBytes(capacity)),
      ring: this.layers[l]?.ring ?? this.owner.create(`L${l}.residual`, ringBytes),
    }));
    const oldKScales = keyScaleCount(f, this.capacity) * 4;
    const oldVScales = valueScaleCount(f, this.capacity) * 4;
    const newKScales = keyScaleCount(f, capacity) * 4;
    copyOnGpu(
      this.device,
      `kv-${this.mode} grow`,
      this.layers.flatMap((old, l) => [
        [old.codes, next[l].codes, 0, 0, old.codes.size] as [GPUBuffer, GPUBuffer, number, number, number],
        [old.scales, next[l].scales, 0, 0, oldKScales],
        [old.scales, next[l].scales, oldKScales, newKScales, oldVScales],
      ]),
    );
    for (const old of this.layers) {
      this.owner.release(old.codes);
      this.owner.release(old.scales);
    }
    this.layers = next;
    this.capacity = capacity;
    this.gen++;
  }

  /** Which tensors this step quantizes: its key and value flush passes are dispatched only then. */
  private flushes(pos0: number, tokens: number): { keys: boolean; values: boolean } {
    const f = this.format;
    return {
      keys: quantizedCount(f, pos0 + tokens, true) > quantizedCount(f, pos0, true),
      values: quantizedCount(f, pos0 + tokens, false) > quantizedCount(f, pos0, false),
    };
  }

  override stepKey(pos0: number, tokens: number): string {
    const { keys, values } = this.flushes(pos0, tokens);
    return `${keys ? 'K' : ''}${values ? 'V' : ''}`;
  }

  /** Uniform QuantParams for the current capacity (see lib/kv_quant.wgsl). */
  private quantParams(rec: Recorder): UniformSlot {
    return rec.uniforms.alloc(quantParamsFields(this.format, this.capacity, this.format.residual));
  }

  recordAttention(rec: Recorder, layer: number, io: AttentionIO): void {
    const { numHeads, numKvHeads, headDim } = this.shape;
    const f = this.format;
    const buf = this.layers[layer];
    const qp = this.quantParams(rec);
    recordRowAttention(rec, {
      label: `attention_${this.mode} L${layer}`, shader: 'attention_quant', variant: rec.variant, io, heads: numHeads, kvHeads: numKvHeads, headDim, capacity: this.capacity, canSplit: true,
      paramsBinding: 0, outBinding: 3, bindings: { 1: rec.step.buffer, 2: io.q, 4: qp, 5: io.k, 6: io.v, 7: buf.ring, 8: buf.codes, 9: buf.scales },
      saliency: this.saliency && { tracker: this.saliency, layer, reads: [1, 2, 4, 5, 7, 8, 9] },
    });
    // After attention: quantize what leaves the residual window, then push the fresh rows into it.
    const T = io.tokens;
    const keyChannel = f.keyGrouping === 'channel';
    const flushedKeys = keyChannel ? T + f.residual : T;
    const groupsPerRow = f.rowElems / f.channelGroup;
    const flush = this.flushes(io.pos0, T);
    const keys = flush.keys ? 1 : 0;
    const values = flush.values ? 1 : 0;
    const passes: Array<[string, boolean, number]> = [
      [keyChannel ? 'scales_channel' : 'scales_token', true, keys * (keyChannel ? Math.ceil(flushedKeys / f.keyBlockTokens + 1) * f.rowElems : T * groupsPerRow)],
      ['pack_codes', true, keys * flushedKeys * this.kWords],
      ['ring_append', true, f.residual > 0 ? T * f.rowElems : 0],
      ['scales_token', false, values * T * groupsPerRow],
      ['pack_codes', false, values * T * this.vWords],
      ['ring_append', false, f.residual > 0 ? T * f.rowElems : 0],
    ];
    for (const [entry, isKey, invocations] of passes) {
      if (invocations === 0) continue;
      const { workgroups, groupsPerRow: stride } = flatDispatch(Math.ceil(invocations / 64), rec.caps.maxComputeWorkgroupsPerDimension);
      const pipeline = rec.pipelines.get({ shader: 'kv_quant_append', entry, variant: rec.variant });
      const ap = rec.uniforms.alloc([isKey ? 1 : 0, invocations, stride * 64, 0]);
      const fresh = isKey ? io.k : io.v;
      // Layouts are derived per entry point ('auto'), so each binds only what it uses.
      const bindings: Record<number, GPUBuffer | UniformSlot> = { 0: qp, 1: ap, 2: rec.step.buffer, 3: fresh, 4: buf.ring };
      if (entry !== 'ring_append') bindings[6] = buf.scales;
      if (entry === 'pack_codes') bindings[5] = buf.codes;
      rec.dispatch(`${entry} ${isKey ? 'K' : 'V'} L${layer}`, pipeline, bindings, workgroups);
    }
  }

  /**
   * Quantized tokens can go: below the key flush (whole R blocks for KIVI) and the value FIFO; the count
   * dropped is a multiple of R so ring slots (position % R) and the flush boundaries are unchanged.
   */
  override evictionRules(): EvictionRules {
    const f = this.format;
    const frontier = Math.min(quantizedCount(f, this.held, true), quantizedCount(f, this.held, false));
    return { block: f.keyGrouping === 'channel' ? f.keyBlockTokens : 1, multiple: Math.max(1, f.residual), frontier };
  }

  /** Codes per slot; K scales per slot (int8) or per G-token block (KIVI); V scales per slot. */
  protected override evictionRegions(): CompactRegion[] {
    const f = this.format;
    const groups = f.rowElems / f.channelGroup;
    const vBase = keyScaleCount(f, this.capacity);
    return this.layers.flatMap((b, l) => [
      { label: `L${l}.codes`, buffer: b.codes, rowWords: this.kWords + this.vWords, rows: 'slot' as const },
      f.keyGrouping === 'channel'
        ? { label: `L${l}.key-scales`, buffer: b.scales, rowWords: f.rowElems, rows: 'block' as const }
        : { label: `L${l}.key-scales`, buffer: b.scales, rowWords: groups, rows: 'slot' as const },
      { label: `L${l}.value-scales`, buffer: b.scales, rowWords: groups, base: vBase, rows: 'slot' as const },
    ]);
  }

  layerStats(): KvLayerStats[] {
    return this.withSaliency(
      this.layers.map((b, layer) => {
        const components = { codes: b.codes.size, scales: b.scales.size, residual: b.ring.size };
        return { layer, components, total: b.codes.size + b.scales.size + b.ring.size };
      }),
    );
  }

  /** The layer's buffers, for kernel tests that compare packed bytes with the CPU reference. */
  debugLayer(layer: number): Readonly<QuantLayer> {
    return this.layers[layer];
  }

  override destroy(): void {
    super.destroy();
    this.layers = [];
  }
}

/** The fields of WGSL `QuantParams` (lib/kv_quant.wgsl) for a format, capacity and ring size. */
export function quantParamsFields(f: QuantFormat, capacity: number, ringSlots: number): number[] {
  return [
    f.rowElems,
    f.residual,
    f.keyBlockTokens,
    f.keyGrouping === 'channel' ? 1 : 0,
    f.keyBits,
    f.valueBits,
    wordsPerRow(f.rowElems, f.keyBits),
    wordsPerRow(f.rowElems, f.valueBits),
    keyScaleCount(f, capacity),
    f.rowElems / f.channelGroup,
    f.channelGroup,
    f.valueFlush === 'block' ? 1 : 0,
    ringSlots,
    ringSlots === f.residual ? 0 : 1,
    0,
    0,
  ];
}
