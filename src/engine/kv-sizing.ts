/**
 * The memory budget's KV sizing: what a cache of a mode allocates when capped at N tokens, through the one
 * byte accounting (src/kv/sizing.ts: the real layout class on a sizing-only device), so the budget's token
 * limits follow the layouts' real allocation rules (growth blocks, rings, scales, retained slots).
 */
import type { GpuCaps } from '../gpu/device';
import type { CacheOptions } from '../kv/growing-cache';
import { kvAllocation } from '../kv/sizing';
import type { KvShape } from '../kv/types';
import type { KvModeSpec } from '../worker/api';

/**
 * Bytes a cache of `spec` (built with `options`, e.g. saliency tracking) allocates once it holds `tokens`
 * tokens when its capacity is capped at `tokens` (the engine caps the cache that way under a budget, so the
 * real allocation never exceeds this). Infinity when the mode cannot be built for this shape (e.g. a merge
 * start layer past the last layer).
 */
export function kvBytesAt(caps: GpuCaps, shape: KvShape, spec: KvModeSpec, kvDtype: 'f32' | 'f16', tokens: number, options: CacheOptions = {}): number {
  try {
    return kvAllocation({ ...shape, maxTokens: tokens }, spec, tokens, kvDtype, options, caps).total;
  } catch {
    return Infinity;
  }
}
