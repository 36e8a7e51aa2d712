/**
 * What every KV layout shares: one BufferGroup owning its GPU buffers, a capacity that grows in blocks,
 * the count of tokens held, the RoPE position of the next token, a generation bumped when buffers are
 * replaced, and (when built with it) the saliency tracker. Layouts add their buffers, kernels
 * (recordAttention), per-layer byte accounting (layerStats) and, where they can, eviction in place.
 */
import { BufferGroup } from '../gpu/buffers';
import type { Recorder } from '../gpu/plan';
import type { KvLayerStats } from '../worker/api';
import { checkKeep, recordCompaction, type CompactRegion } from './eviction';
import { SaliencyTracker } from './saliency';
import { fp16BaselineBytes, type AttentionIO, type EvictionRules, type KvCache, type KvShape } from './types';

/** Options every layout takes. */
export interface CacheOptions {
  /** Track per-slot attention saliency (eviction by saliency); costs a score pass after each attention. */
  saliency?: boolean;
}

export abstract class GrowingKvCache implements KvCache {
  /** Tokens the current allocation holds. */
  protected capacity = 0;
  protected held = 0;
  /** nextPosition − held: the tokens evicted in place (and positions skipped) since the last reset. */
  protected positionOffset = 0;
  protected gen = 0;
  protected readonly owner: BufferGroup;
  /** Created with the first allocation (reserve), so layerStats and bufferSizes always agree. */
  protected saliency: SaliencyTracker | null = null;
  private readonly tracksSaliency: boolean;

  constructor(
    protected readonly device: GPUDevice,
    protected readonly shape: KvShape,
    readonly mode: string,
    options: CacheOptions = {},
  ) {
    this.owner = new BufferGroup(device, `kv-${mode}`);
    this.tracksSaliency = options.saliency ?? false;
  }

  /** Layouts call this in reserve: allocate the saliency buffers with the first allocation. */
  protected reserveSaliency(): void {
    if (this.tracksSaliency && !this.saliency) this.saliency = new SaliencyTracker(this.device, this.owner, this.shape);
  }

  get generation(): number {
    return this.gen;
  }

  get length(): number {
    return this.held;
  }

  get nextPosition(): number {
    return this.held + this.positionOffset;
  }

  /** Tokens the current allocation holds. */
  get allocatedTokens(): number {
    return this.capacity;
  }

  abstract reserve(totalTokens: number): void;
  abstract recordAttention(rec: Recorder, layer: number, io: AttentionIO): void;
  abstract layerStats(): KvLayerStats[];

  commit(tokens: number): void {
    this.held += tokens;
  }

  /** Layouts whose steps all run the same kernels keep one key. */
  stepKey(_pos0: number, _tokens: number): string {
    return '';
  }

  get canRewind(): boolean {
    return false;
  }

  /** Quantized blocks, merged pairs and rings cannot be rewound to an arbitrary position; only a no-op cut works. */
  truncate(tokens: number, nextPosition?: number): boolean {
    if (tokens < this.held) return false;
    this.moveNextPosition(nextPosition);
    return true;
  }

  /** After a cut to `held` slots: the next position is `nextPosition`, or as many positions on as slots were cut. */
  protected moveNextPosition(nextPosition: number | undefined): void {
    if (nextPosition === undefined) return;
    if (!Number.isInteger(nextPosition) || nextPosition < this.held) throw new RangeError(`next position ${nextPosition} is below the ${this.held} slots held`);
    this.positionOffset = nextPosition - this.held;
  }

  reset(): void {
    this.held = 0;
    this.positionOffset = 0;
  }

  /** Layouts that can drop tokens in place override this and evictionRegions. */
  evictionRules(): EvictionRules | null {
    return null;
  }

  /** Every buffer region an eviction compacts (the saliency rows are added here). */
  protected evictionRegions(): CompactRegion[] {
    return [];
  }

  evict(rec: Recorder, keep: readonly number[]): void {
    const rules = this.evictionRules();
    if (!rules) throw new Error(`The ${this.mode} KV layout cannot evict tokens in place.`);
    checkKeep(keep, this.held, rules);
    const regions = this.evictionRegions();
    if (this.saliency) regions.push(this.saliency.region());
    recordCompaction(rec, `kv-${this.mode}`, keep, rules.block, regions);
    this.positionOffset += this.held - keep.length;
    this.held = keep.length;
  }

  async readSaliency(): Promise<Float32Array | null> {
    return this.saliency ? this.saliency.read(this.held) : null;
  }

  /** Add each layer's share of the saliency buffers to its stats (component `saliency`). */
  protected withSaliency(stats: KvLayerStats[]): KvLayerStats[] {
    if (!this.saliency || stats.length === 0) return stats;
    const share = this.saliency.bytesPerLayer;
    return stats.map((s) => ({ ...s, components: { ...s.components, saliency: (s.components.saliency ?? 0) + share }, total: s.total + share }));
  }

  fp16EquivalentBytes(): number {
    return fp16BaselineBytes(this.shape, this.held);
  }

  bytesReadPerStep(): number {
    if (this.capacity === 0) return 0;
    return Math.round((this.owner.bytes * Math.min(this.held, this.capacity)) / this.capacity);
  }

  bufferSizes(): Array<{ label: string; bytes: number }> {
    return this.owner.sizes();
  }

  destroy(): void {
    this.owner.destroy();
    this.saliency = null;
    this.capacity = 0;
    this.held = 0;
    this.positionOffset = 0;
  }
}
