/**
 * Rotation before quantization (docs/kv-compression.md §5) for any KV layout: a decorator that rotates the
 * step's q, k and v in place with a per-head randomized Hadamard transform (shaders/hadamard.wgsl), lets the
 * inner layout attend over (and store, quantize, merge) the rotated rows, and rotates the attention output back.
 * The transform is orthonormal, so q·k and Σ p·v are unchanged: over a full-precision cache attention is the
 * same, while a quantizer sees keys and values whose outlier channels are spread over the whole head.
 *
 * In place is safe because the model reads io.q/k/v only through recordAttention (llama.ts overwrites them in
 * the next layer's split) and every layout's reads and appends of them (zip's probe scores and merge's ring
 * write included) are recorded inside its recordAttention, which also leaves io.out complete (split-K combine
 * included). The same signs serve every layer, so merged layers are SLERPed in one basis.
 */
import { BufferGroup } from '../gpu/buffers';
import { flatDispatch, type Recorder } from '../gpu/plan';
import { f32 } from '../gpu/uniforms';
import { hadamardBlock, rotationSigns, ROTATION_SEED } from '../reference/hadamard';
import type { KvLayerStats } from '../worker/api';
import type { AttentionIO, EvictionRules, KvCache, KvShape } from './types';

/** Longest head the kernel's workgroup memory holds (MAX_HEAD_DIM in shaders/hadamard.wgsl). */
export const MAX_ROTATED_HEAD_DIM = 512;

/** Bytes of the sign buffer a rotated cache of `shape` allocates: f32 [kvHeads, headDim]. */
export function rotationSignBytes(shape: KvShape): number {
  return shape.numKvHeads * shape.headDim * 4;
}

/** A layout whose K/V are stored in a randomized Hadamard basis. */
export class RotatedKvCache implements KvCache {
  readonly mode: string;
  private readonly owner: BufferGroup;
  private signs: GPUBuffer | null = null /* f32 [kvHeads, headDim] of ±1 */;

  constructor(
    private readonly device: GPUDevice,
    private readonly shape: KvShape,
    /** The layout that stores the rotated rows; owned (destroyed) by this cache. */
    readonly inner: KvCache,
    private readonly seed = ROTATION_SEED,
  ) {
    const { numHeads, numKvHeads, headDim } = shape;
    if (numHeads % numKvHeads !== 0) throw new RangeError(`Heads ${numHeads} are not a multiple of KV heads ${numKvHeads}.`);
    if (headDim > MAX_ROTATED_HEAD_DIM) throw new RangeError(`Rotation supports head_dim up to ${MAX_ROTATED_HEAD_DIM}, got ${headDim}.`);
    this.mode = `${inner.mode}+rot`;
    this.owner = new BufferGroup(device, `kv-${this.mode}`);
  }

  get generation(): number {
    return this.inner.generation;
  }

  get length(): number {
    return this.inner.length;
  }

  get nextPosition(): number {
    return this.inner.nextPosition;
  }

  /** Tokens the inner layout's allocation holds. */
  get allocatedTokens(): number {
    return this.inner.allocatedTokens;
  }

  get canRewind(): boolean {
    return this.inner.canRewind;
  }

  /** Allocates the signs with the inner layout's first buffers; they never change, so plans stay valid. */
  reserve(totalTokens: number): void {
    if (totalTokens > 0 && !this.signs) {
      this.signs = this.owner.upload('rotation-signs', rotationSigns(this.shape.numKvHeads, this.shape.headDim, this.seed));
    }
    this.inner.reserve(totalTokens);
  }

  stepKey(pos0: number, tokens: number): string {
    return this.inner.stepKey(pos0, tokens);
  }

  recordAttention(rec: Recorder, layer: number, io: AttentionIO): void {
    if (!this.signs) throw new Error('RotatedKvCache: reserve() before recording attention.');
    const heads = { heads: this.shape.numHeads, kvHeads: this.shape.numKvHeads, headDim: this.shape.headDim };
    // q, k, v ← H·D·x/√n per head; the inner layout attends, stores and quantizes in the rotated basis.
    recordHadamard(rec, `L${layer}`, this.signs, heads, io.tokens, { direction: 'forward', q: io.q, k: io.k, v: io.v });
    this.inner.recordAttention(rec, layer, io);
    // out = Σ p·(H·D·v)/√n = H·D·(Σ p·v)/√n, so D·H·out/√n is the attention output in the model's basis.
    recordHadamard(rec, `L${layer}`, this.signs, heads, io.tokens, { direction: 'inverse', x: io.out });
  }

  commit(tokens: number): void {
    this.inner.commit(tokens);
  }

  truncate(tokens: number, nextPosition?: number): boolean {
    return this.inner.truncate(tokens, nextPosition);
  }

  reset(): void {
    this.inner.reset();
  }

  // Eviction compacts the stored rows whatever their basis, and saliency scores q·k, which the rotation keeps.
  evictionRules(): EvictionRules | null {
    return this.inner.evictionRules();
  }

  evict(rec: Recorder, keep: readonly number[]): void {
    this.inner.evict(rec, keep);
  }

  readSaliency(): Promise<Float32Array | null> {
    return this.inner.readSaliency();
  }

  /** The inner layout's stats, with the sign buffer charged to layer 0 as `rotation`. */
  layerStats(): KvLayerStats[] {
    const stats = this.inner.layerStats();
    const bytes = this.signs?.size ?? 0;
    if (bytes === 0) return stats;
    if (stats.length === 0) return [{ layer: 0, components: { rotation: bytes }, total: bytes }];
    const [first, ...rest] = stats;
    return [{ ...first, components: { ...first.components, rotation: bytes }, total: first.total + bytes }, ...rest];
  }

  fp16EquivalentBytes(): number {
    return this.inner.fp16EquivalentBytes();
  }

  /** The inner layout's share plus the signs, which every layer's rotation reads. */
  bytesReadPerStep(): number {
    return this.inner.bytesReadPerStep() + (this.signs?.size ?? 0);
  }

  bufferSizes(): Array<{ label: string; bytes: number }> {
    return [...this.owner.sizes(), ...this.inner.bufferSizes()];
  }

  destroy(): void {
    this.owner.destroy();
    this.signs = null;
    this.inner.destroy();
  }
}

/** Query heads, KV heads and head size of the rows a rotation dispatch works on. */
export interface RotationHeads {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** The tensors of a rotation: forward rotates q, k and v in one dispatch; inverse rotates x [T, heads, headDim] back. */
export type RotationRows =
  | { direction: 'forward'; q: GPUBuffer /* f32 [T, heads, headDim] */; k: GPUBuffer /* f32 [T, kvHeads, headDim] */; v: GPUBuffer /* f32 [T, kvHeads, headDim] */ }
  | { direction: 'inverse'; x: GPUBuffer /* f32 [T, heads, headDim]; head h uses KV head h / (heads / kvHeads) */ };

/** Record the in-place Hadamard rotation (shaders/hadamard.wgsl) of a step's rows: one workgroup per (token, head). */
export function recordHadamard(rec: Recorder, label: string, signs: GPUBuffer /* f32 [kvHeads, headDim] */, shape: RotationHeads, tokens: number, rows: RotationRows): void {
  const { heads, kvHeads, headDim } = shape;
  if (headDim > MAX_ROTATED_HEAD_DIM) throw new RangeError(`Rotation supports head_dim up to ${MAX_ROTATED_HEAD_DIM}, got ${headDim}.`);
  const n = hadamardBlock(headDim);
  const count = rows.direction === 'forward' ? tokens * (heads + 2 * kvHeads) : tokens * heads;
  const { workgroups, groupsPerRow } = flatDispatch(count, rec.caps.maxComputeWorkgroupsPerDimension);
  // WGSL Params (shaders/hadamard.wgsl).
  const params = rec.uniforms.struct({
    q_rows: tokens * heads, kv_rows: tokens * kvHeads, heads, kv_heads: kvHeads, head_dim: headDim, block: n, row_stride: groupsPerRow, scale: f32(1 / Math.sqrt(n)),
  });
  const pipeline = rec.pipelines.get({ shader: 'hadamard', entry: rows.direction, variant: rec.variant });
  const tensors: Record<number, GPUBuffer> = rows.direction === 'forward' ? { 2: rows.q, 3: rows.k, 4: rows.v } : { 2: rows.x };
  rec.dispatch(`hadamard_${rows.direction} ${label}`, pipeline, { 0: params, 1: signs, ...tensors }, workgroups);
}
