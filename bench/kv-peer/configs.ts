/**
 * The llama.cpp KV-cache configurations of `npm run bench:kv-peer` and their KV bytes: ggml's block sizes for
 * each cache type, times K and V, layers, KV heads, head dim and positions (byte-llama-12l's shape).
 */
import type { KvCacheType } from '../../tools/llama-oracle/oracle.mjs';

/** byte-llama-12l's attention shape (shared/models/README.md). */
export const SHAPE = { layers: 12, kvHeads: 2, headDim: 64 } as const;

/** One llama.cpp context setup: K and V cache types, flash attention, and llama.cpp's Hadamard rotation of quantized K/V. */
export interface PeerConfig {
  /** Row label. */
  name: string;
  key: KvCacheType;
  value: KvCacheType;
  flashAttention: boolean;
  /** false: LLAMA_ATTN_ROT_DISABLE=1 (older llama.cpp behaviour); only matters for quantized types. */
  rotation: boolean;
  /** Why the row is there. */
  role: 'reference' | 'precision floor' | 'kv quantization' | 'kv quantization, no rotation';
}

/** The F16/F16 flash-attention context every other row is measured against (KL(ref ‖ row), Δ ppl). */
export const REFERENCE = 'f16 (FA)';

/** Every configuration run, reference first. Quantized V needs flash attention in llama.cpp, so all quantized rows use it. */
export const CONFIGS: PeerConfig[] = [
  { name: REFERENCE, key: 'F16', value: 'F16', flashAttention: true, rotation: true, role: 'reference' },
  { name: 'f32 (no FA)', key: 'F32', value: 'F32', flashAttention: false, rotation: true, role: 'precision floor' },
  { name: 'f16 (no FA)', key: 'F16', value: 'F16', flashAttention: false, rotation: true, role: 'precision floor' },
  // With flash attention llama.cpp casts an F32 cache to F16 before attending (llama-graph.cpp build_attn_mha).
  { name: 'f32 (FA)', key: 'F32', value: 'F32', flashAttention: true, rotation: true, role: 'precision floor' },
  { name: 'q8_0', key: 'Q8_0', value: 'Q8_0', flashAttention: true, rotation: true, role: 'kv quantization' },
  { name: 'q8_0 K + q4_0 V', key: 'Q8_0', value: 'Q4_0', flashAttention: true, rotation: true, role: 'kv quantization' },
  { name: 'q4_0', key: 'Q4_0', value: 'Q4_0', flashAttention: true, rotation: true, role: 'kv quantization' },
  { name: 'q8_0, no rotation', key: 'Q8_0', value: 'Q8_0', flashAttention: true, rotation: false, role: 'kv quantization, no rotation' },
  { name: 'q8_0 K + q4_0 V, no rotation', key: 'Q8_0', value: 'Q4_0', flashAttention: true, rotation: false, role: 'kv quantization, no rotation' },
  { name: 'q4_0, no rotation', key: 'Q4_0', value: 'Q4_0', flashAttention: true, rotation: false, role: 'kv quantization, no rotation' },
];

/** Bytes per element of a ggml cache type: a block's bytes over its elements (ggml type traits). */
const BLOCK: Record<KvCacheType, { bytes: number; elements: number }> = {
  F32: { bytes: 4, elements: 1 },
  F16: { bytes: 2, elements: 1 },
  BF16: { bytes: 2, elements: 1 },
  Q8_0: { bytes: 34, elements: 32 },
  Q4_0: { bytes: 18, elements: 32 },
  Q4_1: { bytes: 20, elements: 32 },
  Q5_0: { bytes: 22, elements: 32 },
  Q5_1: { bytes: 24, elements: 32 },
  IQ4_NL: { bytes: 18, elements: 32 },
};

/** Bytes per element of a cache type. */
export function bytesPerElement(t: KvCacheType): number {
  return BLOCK[t].bytes / BLOCK[t].elements;
}

/** K/V elements per position of one tensor (K or V) over all layers. */
export const ELEMENTS_PER_POSITION = SHAPE.layers * SHAPE.kvHeads * SHAPE.headDim;

/** KV bytes of `n` positions held as `key`/`value` (every block is whole: head dim 64 = 2 blocks of 32). */
export function kvBytes(key: KvCacheType, value: KvCacheType, n: number): number {
  return (bytesPerElement(key) + bytesPerElement(value)) * ELEMENTS_PER_POSITION * n;
}

/** The fp16 baseline: K and V of `n` positions at 2 bytes. */
export function fp16Bytes(n: number): number {
  return kvBytes('F16', 'F16', n);
}
