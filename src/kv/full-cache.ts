/**
 * The `full` KV layout: K and V per layer as kvt (f16 when the adapter has shader-f16, else f32),
 * [capacity, kvHeads, headDim] row-major. Capacity grows in whole blocks; on growth the old rows are
 * copied on the GPU and the old buffers freed. Any slot can be evicted in place (rows compacted on the GPU).
 */
import { flatDispatch, type Recorder } from '../gpu/plan';
import type { KvLayerStats } from '../worker/api';
import type { CompactRegion } from './eviction';
import { GrowingKvCache, type CacheOptions } from './growing-cache';
import { recordRowAttention } from './row-attention';
import type { AttentionIO, EvictionRules, KvShape } from './types';

/** Options for the full-precision layout. */
export interface FullCacheOptions extends CacheOptions {
  /** Storage dtype; must be 'f32' unless the device has shader-f16. */
  dtype: 'f32' | 'f16';
  /** Growth granularity in tokens (default 64). */
  blockTokens?: number;
}

interface LayerBuffers {
  k: GPUBuffer /* kvt [capacity, kvHeads, headDim] */;
  v: GPUBuffer /* kvt [capacity, kvHeads, headDim] */;
}

/** Full-precision cache. */
export class FullKvCache extends GrowingKvCache {
  private buffers: LayerBuffers[] = [];
  private readonly blockTokens: number;
  private readonly rowBytes: number;

  constructor(
    device: GPUDevice,
    shape: KvShape,
    options: FullCacheOptions,
  ) {
    super(device, shape, 'full', options);
    this.blockTokens = options.blockTokens ?? 64;
    this.rowBytes = shape.numKvHeads * shape.headDim * (options.dtype === 'f16' ? 2 : 4);
  }

  reserve(totalTokens: number): void {
    if (totalTokens <= this.capacity) return;
    this.reserveSaliency();
    const grown = Math.max(totalTokens, Math.ceil(this.capacity * 1.25));
    const capacity = Math.min(Math.ceil(grown / this.blockTokens) * this.blockTokens, Math.max(totalTokens, this.shape.maxTokens));
    const next = Array.from({ length: this.shape.numLayers }, (_, l) => ({
      k: this.owner.create(`L${l}.k`, capacity * this.rowBytes),
      v: this.owner.create(`L${l}.v`, capacity * this.rowBytes),
    }));
    if (this.held > 0) {
      const encoder = this.device.createCommandEncoder({ label: 'kv-full grow' });
      const bytes = this.held * this.rowBytes;
      this.buffers.forEach((old, l) => {
        encoder.copyBufferToBuffer(old.k, 0, next[l].k, 0, bytes);
        encoder.copyBufferToBuffer(old.v, 0, next[l].v, 0, bytes);
      });
      this.device.queue.submit([encoder.finish()]);
    }
    for (const old of this.buffers) {
      this.owner.release(old.k);
      this.owner.release(old.v);
    }
    this.buffers = next;
    this.capacity = capacity;
    this.gen++;
  }

  recordAttention(rec: Recorder, layer: number, io: AttentionIO): void {
    const { numHeads, numKvHeads, headDim } = this.shape;
    const { k, v } = this.buffers[layer];
    const rowElems = numKvHeads * headDim;
    const append = rec.pipelines.get({ shader: 'kv_full_append', variant: rec.variant });
    const { workgroups, groupsPerRow } = flatDispatch(Math.ceil((io.tokens * rowElems) / 64), rec.caps.maxComputeWorkgroupsPerDimension);
    rec.dispatch(
      `kv_full_append L${layer}`,
      append,
      { 0: rec.uniforms.alloc([rowElems, groupsPerRow * 64, 0, 0]), 1: rec.step.buffer, 2: io.k, 3: io.v, 4: k, 5: v },
      workgroups,
    );
    recordRowAttention(rec, {
      label: `attention_full L${layer}`, shader: 'attention_full', variant: rec.variant, io, heads: numHeads, kvHeads: numKvHeads, headDim, capacity: this.capacity, canSplit: true,
      paramsBinding: 0, outBinding: 5, bindings: { 1: rec.step.buffer, 2: io.q, 3: k, 4: v },
      saliency: this.saliency && { tracker: this.saliency, layer, reads: [1, 2, 3] },
    });
  }

  /**
   * Per layer K and V for the fused decode step (src/kernels/fused-decode.ts), which appends and attends in
   * this layout itself; null while the cache has no buffers or tracks saliency (that needs its score passes).
   */
  fusedLayers(): ReadonlyArray<Readonly<LayerBuffers>> | null {
    return this.saliency || this.buffers.length === 0 ? null : this.buffers;
  }

  override evictionRules(): EvictionRules {
    return { block: 1, multiple: 1, frontier: this.held };
  }

  protected override evictionRegions(): CompactRegion[] {
    const rowWords = this.rowBytes / 4;
    return this.buffers.flatMap((b, l) => [
      { label: `L${l}.k`, buffer: b.k, rowWords, rows: 'slot' as const },
      { label: `L${l}.v`, buffer: b.v, rowWords, rows: 'slot' as const },
    ]);
  }

  override get canRewind(): boolean {
    return true;
  }

  override truncate(tokens: number, nextPosition?: number): boolean {
    const cut = this.held - Math.min(this.held, tokens);
    this.held -= cut;
    this.moveNextPosition(nextPosition ?? this.held + this.positionOffset);
    return true;
  }

  layerStats(): KvLayerStats[] {
    return this.withSaliency(this.buffers.map((b, layer) => ({ layer, components: { full: b.k.size + b.v.size }, total: b.k.size + b.v.size })));
  }

  override destroy(): void {
    super.destroy();
    this.buffers = [];
  }
}
