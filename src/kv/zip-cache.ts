/**
 * The `zip` KV layout: ZipCache-style saliency-aware mixed precision (docs/kv-compression.md §2). Salient
 * tokens (top r by probe-normalized attention, per KV head and R-token block) at b_high bits, the rest at
 * b_low; keys per channel (KIVI) within each subset, values channel-separable tokenwise. The design and the
 * packed layout are described in zip-format.ts and shaders/lib/zip_layout.wgsl.
 *
 * Per step and layer: attention_zip.wgsl reads the layout in place (no full-precision copy of quantized
 * tokens) and records each row's softmax max and sum; then kv_zip_append.wgsl scores the unquantized tokens
 * with the step's probe queries, freezes every block the step completes (selection, scales, codes) and moves
 * the remaining fresh rows into the ring. Blocks are never re-quantized. Eviction in place drops whole frozen
 * R-token blocks (never the ring), so ring slots and the next block boundary stay put.
 */
import { Usage } from '../gpu/buffers';
import { flatDispatch, type Binding, type Recorder } from '../gpu/plan';
import { f32 } from '../gpu/uniforms';
import type { KvLayerStats } from '../worker/api';
import type { CompactRegion } from './eviction';
import { copyOnGpu, grownCapacity } from './growth';
import { GrowingKvCache, type CacheOptions } from './growing-cache';
import { recordRowAttention } from './row-attention';
import type { AttentionIO, EvictionRules, KvShape } from './types';
import { zipSaliencyWords, zipScratchWords, type ZipFormat } from './zip-format';

interface ZipLayer {
  codes: GPUBuffer /* u32 [blocks, 2, Hk, headWords] */;
  meta: GPUBuffer /* u32 [blocks, metaWords]: key scales | value scales | channel scales | bitmask */;
  ring: GPUBuffer /* kvt [2, R, E] */;
  saliency: GPUBuffer /* f32 [acc Hk × R | count R] */;
}

/** The fields of WGSL `ZipParams` (lib/zip_layout.wgsl). */
export function zipParamsFields(f: ZipFormat, heads: number, maxStep: number) {
  return [
    f.rowElems, f.kvHeads, f.headDim, heads,
    f.residual, f.keyGroup, f.salientSlots, f.maskWords,
    f.highBits, f.lowBits, f.keyGroupsSalient, f.keyGroups,
    f.salientWords, f.headWords, f.codeWords, f.metaWords,
    f.valueScaleOffset, f.channelScaleOffset, f.maskOffset, maxStep,
    f.probePeriod, f32(1 / Math.sqrt(f.headDim)), 0, 0,
  ];
}

/** A zip cache: every layer in the same ZipFormat. */
export class ZipKvCache extends GrowingKvCache {
  private layers: ZipLayer[] = [];
  private scratch: GPUBuffer | null = null /* f32 [row stats maxStep·H·2 | fresh acc Hk·maxStep | fresh count maxStep], shared */;
  private readonly blockTokens: number;
  private readonly maxStep: number;

  constructor(
    device: GPUDevice,
    shape: KvShape,
    readonly format: ZipFormat,
    /** Bytes of one full-precision element in the ring (kvt). */
    private readonly ringElementBytes: 2 | 4,
    mode: string,
    options: CacheOptions = {},
  ) {
    super(device, shape, mode, options);
    if (format.kvHeads !== shape.numKvHeads || format.headDim !== shape.headDim) throw new RangeError('zip format does not match the model shape.');
    if (shape.numHeads % shape.numKvHeads !== 0) throw new RangeError(`Heads ${shape.numHeads} are not a multiple of KV heads ${shape.numKvHeads}.`);
    this.blockTokens = format.residual * Math.max(1, Math.ceil(64 / format.residual));
    this.maxStep = shape.maxStepTokens ?? 128;
  }

  /** Bytes of the shared scratch, rounded up so that each layer is charged a whole number of words. */
  private scratchBytes(): number {
    const share = Math.ceil((zipScratchWords(this.format, this.shape.numHeads, this.maxStep) * 4) / (4 * this.shape.numLayers)) * 4;
    return share * this.shape.numLayers;
  }

  reserve(totalTokens: number): void {
    if (totalTokens <= this.capacity) return;
    this.reserveSaliency();
    const f = this.format;
    const capacity = grownCapacity(this.capacity, totalTokens, this.blockTokens, this.shape.maxTokens);
    const blocks = capacity / f.residual;
    this.scratch ??= this.owner.create('saliency-scratch', this.scratchBytes());
    const next = Array.from({ length: this.shape.numLayers }, (_, l) => ({
      codes: this.owner.create(`L${l}.codes`, blocks * f.codeWords * 4),
      meta: this.owner.create(`L${l}.block-meta`, blocks * f.metaWords * 4),
      ring: this.layers[l]?.ring ?? this.owner.create(`L${l}.residual`, 2 * f.residual * f.rowElems * this.ringElementBytes),
      saliency: this.layers[l]?.saliency ?? this.owner.create(`L${l}.saliency`, zipSaliencyWords(f) * 4),
    }));
    // Every block-indexed buffer keeps its prefix: growth never touches what is already quantized.
    copyOnGpu(
      this.device,
      `kv-${this.mode} grow`,
      this.layers.flatMap((old, l) => [
        [old.codes, next[l].codes, 0, 0, old.codes.size] as [GPUBuffer, GPUBuffer, number, number, number],
        [old.meta, next[l].meta, 0, 0, old.meta.size],
      ]),
    );
    for (const old of this.layers) {
      this.owner.release(old.codes);
      this.owner.release(old.meta);
    }
    this.layers = next;
    this.capacity = capacity;
    this.gen++;
  }

  recordAttention(rec: Recorder, layer: number, io: AttentionIO): void {
    const { numHeads, numKvHeads, headDim } = this.shape;
    const f = this.format;
    const T = io.tokens;
    if (T > this.maxStep) throw new RangeError(`zip cache: step of ${T} tokens exceeds the ${this.maxStep} it was sized for.`);
    const buf = this.layers[layer];
    const scratch = this.scratch as GPUBuffer;
    const zp = rec.uniforms.alloc(zipParamsFields(f, numHeads, this.maxStep));
    recordRowAttention(rec, {
      label: `attention_${this.mode} L${layer}`, shader: 'attention_zip', variant: rec.variant, io, heads: numHeads, kvHeads: numKvHeads, headDim, capacity: this.capacity, canSplit: false,
      bindings: { 0: zp, 1: rec.step.buffer, 2: io.q, 4: io.k, 5: io.v, 6: buf.ring, 7: buf.codes, 8: buf.meta, 9: scratch },
      paramsBinding: 10, outBinding: 3,
      saliency: this.saliency && { tracker: this.saliency, layer, reads: [0, 1, 2, 4, 6, 7, 8] },
    });
    // After attention: score, then freeze the blocks this step completes (at most ⌊(R − 1 + T)/R⌋).
    const R = f.residual;
    const blocks = Math.floor((R - 1 + T) / R);
    const passes: Array<[string, number, number, number[]]> = [
      // [entry, tensor, invocations, storage bindings it uses (both fresh tensors wherever `source` is read)]
      ['probe_scores', 0, numKvHeads * (R - 1 + T), [3, 4, 5, 6, 9, 10]],
      ['select_salient', 0, blocks * numKvHeads * f.maskWords, [8, 9, 10]],
      ['key_scales', 0, blocks * numKvHeads * f.keyGroups * headDim, [4, 5, 6, 8]],
      ['value_channel_scales', 1, blocks * f.rowElems, [4, 5, 6, 8]],
      ['value_token_scales', 1, blocks * R, [4, 5, 6, 8]],
      ['pack_codes', 0, blocks * numKvHeads * f.headWords, [4, 5, 6, 7, 8]],
      ['pack_codes', 1, blocks * numKvHeads * f.headWords, [4, 5, 6, 7, 8]],
      ['ring_append', 0, T * f.rowElems, [4, 5, 6, 9, 10]],
    ];
    const storage: Record<number, GPUBuffer> = { 3: io.q, 4: io.k, 5: io.v, 6: buf.ring, 7: buf.codes, 8: buf.meta, 9: buf.saliency, 10: scratch };
    for (const [entry, tensor, invocations, used] of passes) {
      if (invocations === 0) continue;
      const { workgroups, groupsPerRow } = flatDispatch(Math.ceil(invocations / 64), rec.caps.maxComputeWorkgroupsPerDimension);
      const pipeline = rec.pipelines.get({ shader: 'kv_zip_append', entry, variant: rec.variant });
      const ap = rec.uniforms.alloc([tensor, invocations, groupsPerRow * 64, 0]);
      // Layouts are derived per entry point ('auto'), so each binds only what it uses.
      const bindings: Record<number, Binding> = { 0: zp, 1: ap, 2: rec.step.buffer };
      for (const b of used) bindings[b] = storage[b];
      rec.dispatch(`${entry}${entry === 'pack_codes' ? (tensor ? ' V' : ' K') : ''} L${layer}`, pipeline, bindings, workgroups);
    }
  }

  /** Whole frozen R blocks can go, never the ring. */
  override evictionRules(): EvictionRules {
    const R = this.format.residual;
    return { block: R, multiple: R, frontier: Math.floor(this.held / R) * R };
  }

  protected override evictionRegions(): CompactRegion[] {
    const f = this.format;
    return this.layers.flatMap((b, l) => [
      { label: `L${l}.codes`, buffer: b.codes, rowWords: f.codeWords, rows: 'block' as const },
      { label: `L${l}.block-meta`, buffer: b.meta, rowWords: f.metaWords, rows: 'block' as const },
    ]);
  }

  /** Per layer: codes, key + value scales, channel scales, bitmask (regions of `meta`), ring, saliency (+ scratch share). */
  layerStats(): KvLayerStats[] {
    const f = this.format;
    const blocks = this.capacity / f.residual;
    const scratchShare = this.scratch ? this.scratch.size / this.shape.numLayers : 0;
    const stats = this.layers.map((b, layer) => {
      const components: Record<string, number> = {
        codes: b.codes.size,
        scales: blocks * (f.valueScaleOffset + f.residual) * 4,
        'channel scales': blocks * f.rowElems * 4,
        bitmask: blocks * f.kvHeads * f.maskWords * 4,
        residual: b.ring.size,
        saliency: b.saliency.size + scratchShare,
      };
      return { layer, components, total: Object.values(components).reduce((a, x) => a + x, 0) };
    });
    return this.withSaliency(stats);
  }

  /** Copy a layer's packed state back to the CPU (tests compare it with the reference; not for the hot path). */
  async readLayer(layer: number): Promise<{ codes: Uint32Array; meta: Uint32Array; saliency: Float32Array }> {
    const b = this.layers[layer];
    const parts = [b.codes, b.meta, b.saliency];
    const staging = parts.map((p) => this.device.createBuffer({ label: `kv-${this.mode} readback`, size: p.size, usage: Usage.MAP_READ | Usage.COPY_DST }));
    const encoder = this.device.createCommandEncoder({ label: `kv-${this.mode} readback` });
    parts.forEach((p, i) => encoder.copyBufferToBuffer(p, 0, staging[i], 0, p.size));
    this.device.queue.submit([encoder.finish()]);
    const words = await Promise.all(
      staging.map(async (s) => {
        await s.mapAsync(Usage.MAP_READ);
        const copy = s.getMappedRange().slice(0);
        s.destroy();
        return copy;
      }),
    );
    return { codes: new Uint32Array(words[0]), meta: new Uint32Array(words[1]), saliency: new Float32Array(words[2]) };
  }

  override destroy(): void {
    super.destroy();
    this.layers = [];
    this.scratch = null;
  }
}
