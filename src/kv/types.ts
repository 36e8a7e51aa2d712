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

/** A KV cache layout. Positions are absolute; the cache holds positions [0, length). */
export interface KvCache {
  /** Mode name shown to the user. */
  readonly mode: string;
  /** Bumped whenever buffers are replaced, so recorded plans holding old bind groups are rebuilt. */
  readonly generation: number;
  /** Tokens currently held. */
  readonly length: number;
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
  /** Forget positions from `tokens` on. Returns false when the layout cannot cut there (the caller then resets). */
  truncate(tokens: number): boolean;
  /** Forget everything; keeps the allocation for reuse. */
  reset(): void;
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
