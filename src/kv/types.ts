/**
 * The KV cache abstraction. A cache layout owns its GPU buffers and its own WGSL write and read
 * kernels: attention reads each layout in place, so no layout ever materializes full-precision K/V
 * beyond what it stores.
 */
import type { Recorder } from '../gpu/plan';
import type { KvLayerStats } from '../worker/api';

/** Model dimensions a cache layout needs. */
export interface KvShape {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Largest number of tokens the model accepts. */
  maxTokens: number;
  /** Largest step (prefill chunk) in tokens; merged layouts size their rings from it (default 128). */
  maxStepTokens?: number;
}

/** The buffers one layer's attention step works on. */
export interface AttentionIO {
  q: GPUBuffer /* f32 [T, heads, headDim], after RoPE */;
  k: GPUBuffer /* f32 [T, kvHeads, headDim], after RoPE: this step's fresh keys */;
  v: GPUBuffer /* f32 [T, kvHeads, headDim]: this step's fresh values */;
  out: GPUBuffer /* f32 [T, heads, headDim] */;
  /** Absolute position of the step's first token (the plan being recorded is for this step's stepKey). */
  pos0: number;
  /** f32 [SPLIT_MAX_TOKENS, heads, MAX_SPLITS, 2 + headDim]: split-K partial results of decode steps. */
  partials: GPUBuffer;
  tokens: number;
}

/**
 * What a layout can drop in place now (see KvCache.evict). Slot b·block … (b+1)·block − 1 form block b; a
 * keep list must keep or drop whole blocks, drop a multiple of `multiple` slots, and keep every slot from
 * `frontier` on (the full-precision residual, which is never evicted).
 */
export interface EvictionRules {
  block: number;
  multiple: number;
  frontier: number;
}

/**
 * A KV cache layout. The cache holds slots [0, length) in the order they were appended; attention of a step
 * at slot pos0 reads slots [0, pos0 + t]. Until tokens are evicted in place a slot is the token's position;
 * after an eviction the kept keys keep the RoPE phase of their original positions and new tokens continue
 * at `nextPosition`.
 */
export interface KvCache {
  /** Mode name shown to the user. */
  readonly mode: string;
  /** Bumped whenever buffers are replaced, so recorded plans holding old bind groups are rebuilt. */
  readonly generation: number;
  /** Tokens (slots) currently held. */
  readonly length: number;
  /** RoPE position of the next token appended: `length` plus the tokens evicted in place since the last reset. */
  readonly nextPosition: number;
  /** Tokens the current allocation holds (growth happens past it). */
  readonly allocatedTokens: number;
  /** Make room for `totalTokens` positions; grows in blocks, never per token. */
  reserve(totalTokens: number): void;
  /**
   * What distinguishes the work of a step of `tokens` tokens at position `pos0` (e.g. which flushes it
   * runs): steps with different keys get their own recorded plans, so kernels that would do nothing are
   * not dispatched. recordAttention records for the step at io.pos0.
   */
  stepKey(pos0: number, tokens: number): string;
  /** Record, for one layer, attention of this step's queries over the cache plus the fresh K/V, and the append of the fresh K/V. */
  recordAttention(rec: Recorder, layer: number, io: AttentionIO): void;
  /** Note that a submitted step appended `tokens` positions. */
  commit(tokens: number): void;
  /** Whether truncate() can cut at any position (then greedy decoding may run ahead and roll back). */
  readonly canRewind: boolean;
  /**
   * Forget slots from `tokens` on; the next token then goes at RoPE position `nextPosition` (default: back by
   * as many positions as slots were cut). Returns false when the layout cannot cut there (the caller then resets);
   * a cut at or past `length` always works, so it can also move the next position on.
   */
  truncate(tokens: number, nextPosition?: number): boolean;
  /** Forget everything; keeps the allocation for reuse. */
  reset(): void;
  /** What this layout can evict in place now, or null when it cannot (the engine then re-prefills what it keeps). */
  evictionRules(): EvictionRules | null;
  /**
   * Record, into a one-off plan, the GPU compaction that keeps only the slots `keep` (ascending, obeying
   * evictionRules()), and update the bookkeeping: afterwards the cache holds keep.length slots and
   * nextPosition is unchanged. The caller submits the plan before the next step.
   */
  evict(rec: Recorder, keep: readonly number[]): void;
  /**
   * Normalized attention saliency of each held slot (accumulated attention weight of the probe queries over
   * layers and heads / the number of queries that saw the slot), or null when the cache was built without it.
   */
  readSaliency(): Promise<Float32Array | null>;
  /** Real allocated bytes per layer and component. */
  layerStats(): KvLayerStats[];
  /** Bytes an fp16 cache holding the same tokens would take: 2 × L × Hk × d × T × 2. */
  fp16EquivalentBytes(): number;
  /** Bytes one decode step's attention reads: the stored share of every buffer (allocated bytes × held / capacity). */
  bytesReadPerStep(): number;
  /** Every GPU buffer the cache owns, with its real size: the ground truth layerStats must add up to. */
  bufferSizes(): Array<{ label: string; bytes: number }>;
  /** Free every buffer. Safe to call twice. */
  destroy(): void;
}

/** fp16 baseline bytes for `tokens` tokens, from docs/kv-compression.md. */
export function fp16BaselineBytes(shape: KvShape, tokens: number): number {
  return 2 * shape.numLayers * shape.numKvHeads * shape.headDim * tokens * 2;
}
