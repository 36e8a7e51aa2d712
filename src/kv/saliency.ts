/**
 * Attention saliency per cache slot, for eviction by saliency (H2O / SnapKV): after each step's attention the
 * step's last SALIENCY_PROBES queries score every slot they see with the layout's own key reader
 * (shaders/lib/saliency_rows.wgsl, included by the attention kernels of full, int8/kivi and zip), accumulating
 * softmax probability per slot and KV head (summed over layers) and the number of queries that saw the slot.
 * The normalized saliency (ZipCache's normalization: weight / queries that saw it) ranks slots for eviction.
 */
import type { BufferGroup } from '../gpu/buffers';
import { Usage } from '../gpu/buffers';
import { flatDispatch, type Binding, type Recorder } from '../gpu/plan';
import type { ShaderName } from '../gpu/shaders';
import type { CompactRegion } from './eviction';
import type { AttentionIO, KvShape } from './types';

/** Probe queries per step: a decode step's one query, a prefill chunk's last 8 (SnapKV's observation window). */
export const SALIENCY_PROBES = 8;

/** The two saliency buffers of a cache: what they cost and how a step records its passes into them. */
export class SaliencyTracker {
  /** f32 [slots, kvHeads + 1]: attention weight per KV head (summed over layers), then the query count. */
  readonly sal: GPUBuffer;
  /** f32 [SALIENCY_PROBES, heads, 2]: each probe's softmax max and sum, rewritten every layer. */
  readonly stats: GPUBuffer;
  /** Slots the buffer has rows for. */
  readonly slots: number;
  private readonly rowWords: number;

  constructor(
    private readonly device: GPUDevice,
    owner: BufferGroup,
    private readonly shape: KvShape,
  ) {
    this.slots = shape.maxTokens;
    this.rowWords = shape.numKvHeads + 1;
    const statsBytes = SALIENCY_PROBES * shape.numHeads * 2 * 4;
    // Both buffers together are a whole number of words per layer, so layerStats can charge every layer equally.
    const perLayer = 4 * shape.numLayers;
    const total = Math.ceil((this.slots * this.rowWords * 4 + statsBytes) / perLayer) * perLayer;
    this.stats = owner.create('saliency-stats', statsBytes);
    this.sal = owner.create('saliency', total - statsBytes);
  }

  /** Bytes of both buffers, charged equally to every layer. */
  get bytesPerLayer(): number {
    return (this.sal.size + this.stats.size) / this.shape.numLayers;
  }

  /**
   * Record a layer's saliency passes: entry points saliency_stats and saliency_accumulate of `shader`, bound
   * to the layout's own `bindings` (those its row_score reads) plus AttnParams at `paramsBinding`.
   */
  record(rec: Recorder, layer: number, io: AttentionIO, shader: ShaderName, bindings: Record<number, Binding>, paramsBinding: number, attnParams: Binding): void {
    const { numHeads, numKvHeads } = this.shape;
    const probes = Math.min(SALIENCY_PROBES, io.tokens);
    const seen = Math.min(io.pos0 + io.tokens, this.slots);
    const passes: Array<[string, number, Record<number, Binding>]> = [
      ['saliency_stats', probes * numHeads, { 13: this.stats }],
      ['saliency_accumulate', seen * numKvHeads, { 13: this.stats, 14: this.sal }],
    ];
    // Layouts are derived per entry point ('auto'), so each binds only what it uses.
    for (const [entry, invocations, own] of passes) {
      const { workgroups, groupsPerRow } = flatDispatch(Math.ceil(invocations / 64), rec.caps.maxComputeWorkgroupsPerDimension);
      // WGSL SaliencyParams (lib/saliency_rows.wgsl).
      const sp = rec.uniforms.struct({ probes: SALIENCY_PROBES, count_queries: layer === 0 ? 1 : 0, row_stride: groupsPerRow * 64, slots: this.slots });
      const pipeline = rec.pipelines.get({ shader, entry, variant: rec.variant });
      rec.dispatch(`${entry} L${layer}`, pipeline, { ...bindings, [paramsBinding]: attnParams, 12: sp, ...own }, workgroups);
    }
  }

  /** The saliency rows, compacted with the cache's slots on eviction. */
  region(): CompactRegion {
    return { label: 'saliency', buffer: this.sal, rowWords: this.rowWords, rows: 'slot' };
  }

  /** Normalized saliency of slots [0, held): Σ over KV heads of the weight / max(1, queries that saw the slot). */
  async read(held: number): Promise<Float32Array> {
    const n = Math.min(held, this.slots);
    const out = new Float32Array(held);
    if (n === 0) return out;
    const bytes = n * this.rowWords * 4;
    const staging = this.device.createBuffer({ label: 'saliency readback', size: bytes, usage: Usage.MAP_READ | Usage.COPY_DST });
    const encoder = this.device.createCommandEncoder({ label: 'saliency readback' });
    encoder.copyBufferToBuffer(this.sal, 0, staging, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(Usage.MAP_READ);
    const rows = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    const k = this.shape.numKvHeads;
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let g = 0; g < k; g++) sum += rows[j * this.rowWords + g];
      out[j] = sum / Math.max(1, rows[j * this.rowWords + k]);
    }
    return out;
  }
}
