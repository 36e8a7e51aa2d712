/**
 * What every KV layout shares: one BufferGroup owning its GPU buffers, a capacity that grows in blocks,
 * the count of tokens held, and a generation bumped when buffers are replaced. Layouts add their buffers,
 * kernels (recordAttention) and per-layer byte accounting (layerStats).
 */
import { BufferGroup } from '../gpu/buffers';
import type { Recorder } from '../gpu/plan';
import type { KvLayerStats } from '../worker/api';
import { fp16BaselineBytes, type AttentionIO, type KvCache, type KvShape } from './types';

export abstract class GrowingKvCache implements KvCache {
  /** Tokens the current allocation holds. */
  protected capacity = 0;
  protected held = 0;
  protected gen = 0;
  protected readonly owner: BufferGroup;

  constructor(
    protected readonly device: GPUDevice,
    protected readonly shape: KvShape,
    readonly mode: string,
  ) {
    this.owner = new BufferGroup(device, `kv-${mode}`);
  }

  get generation(): number {
    return this.gen;
  }

  get length(): number {
    return this.held;
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
  truncate(tokens: number): boolean {
    return tokens >= this.held;
  }

  reset(): void {
    this.held = 0;
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
    this.capacity = 0;
    this.held = 0;
  }
}
