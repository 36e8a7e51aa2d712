/**
 * Builds the engine's KV caches and remembers how each was built: its capacity cap (a memory budget's token
 * limit, else the context), whether it tracks saliency, and whether it allocated its capped size at once.
 * Under a budget a cache must never grow: growth briefly holds the old and the new buffers together, which
 * can pass the budget, so a budgeted cache reserves its cap when it is built (and the old cache is freed first).
 */
import type { GpuContext } from '../gpu/device';
import { createKvCache } from '../kv/factory';
import type { KvCache, KvShape } from '../kv/types';
import type { KvModeSpec } from '../worker/api';
import { sameSpec } from './context-window';

/** What a turn asks of the cache. */
export interface CacheRequest {
  spec: KvModeSpec;
  /** Capacity cap in tokens. */
  cap: number;
  saliency: boolean;
  /** Under a memory budget: allocate the cap at once. */
  reserved: boolean;
}

/** Caches built for the engine, with how they were built. */
export class CacheBuilder {
  private readonly builds = new WeakMap<KvCache, Omit<CacheRequest, 'spec'>>();

  /** How `cache` was built; caches built elsewhere (benchmarks, quality tasks) are capped at the context and grow. */
  describe(cache: KvCache, maxTokens: number): Omit<CacheRequest, 'spec'> {
    return this.builds.get(cache) ?? { cap: maxTokens, saliency: false, reserved: false };
  }

  /** Whether `cache`, in mode `mode`, already is what `want` asks (a reserved cache serves an unbudgeted turn too). */
  serves(cache: KvCache, mode: KvModeSpec, maxTokens: number, want: CacheRequest): boolean {
    const has = this.describe(cache, maxTokens);
    return sameSpec(mode, want.spec) && has.cap === want.cap && has.saliency === want.saliency && (has.reserved || !want.reserved);
  }

  /** A new cache for `want` (capacity capped at want.cap, allocated at once when reserved). */
  build(gpu: GpuContext, shape: KvShape, kvDtype: 'f32' | 'f16', want: CacheRequest): KvCache {
    const cache = createKvCache(gpu.device, gpu.caps, { ...shape, maxTokens: want.cap }, want.spec, kvDtype, { saliency: want.saliency });
    if (want.reserved) cache.reserve(want.cap);
    this.builds.set(cache, { cap: want.cap, saliency: want.saliency, reserved: want.reserved });
    return cache;
  }
}
