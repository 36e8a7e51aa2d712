/**
 * Exact KV byte sizing without touching the GPU: the real cache class of a mode is built on a sizing-only
 * device that hands out size-only buffer records, reserved for N tokens, and its layerStats() are summed.
 * The memory budget uses this, so its token limits follow the layouts' real allocation rules (growth
 * blocks, rings, scales, retained slots) instead of a second copy of the formulas.
 */
import type { GpuCaps } from '../gpu/device';
import { createKvCache } from '../kv/factory';
import type { CacheOptions } from '../kv/growing-cache';
import type { KvShape } from '../kv/types';
import type { KvModeSpec } from '../worker/api';

/** A buffer that only knows its size. */
function sizedBuffer(size: number, label?: string): GPUBuffer {
  return { size, label: label ?? '', destroy() {} } as unknown as GPUBuffer;
}

/** The few device calls a cache makes while it is created and first reserved, none of which does GPU work. */
const sizingDevice = {
  createBuffer: (d: GPUBufferDescriptor) => sizedBuffer(d.size, d.label),
  createCommandEncoder: () => ({ copyBufferToBuffer() {}, finish: () => ({}) }),
  queue: { writeBuffer() {}, submit() {} },
} as unknown as GPUDevice;

/**
 * Bytes a cache of `spec` (built with `options`, e.g. saliency tracking) allocates once it holds `tokens` tokens when its capacity is capped at `tokens`
 * (the engine caps the cache that way under a budget, so the real allocation never exceeds this).
 * Infinity when the mode cannot be built for this shape (e.g. a merge start layer past the last layer).
 */
export function kvBytesAt(caps: GpuCaps, shape: KvShape, spec: KvModeSpec, kvDtype: 'f32' | 'f16', tokens: number, options: CacheOptions = {}): number {
  if (tokens <= 0) return 0;
  try {
    const cache = createKvCache(sizingDevice, caps, { ...shape, maxTokens: tokens }, spec, kvDtype, options);
    cache.reserve(tokens);
    const bytes = cache.layerStats().reduce((sum, layer) => sum + layer.total, 0);
    cache.destroy();
    return bytes;
  } catch {
    return Infinity;
  }
}
