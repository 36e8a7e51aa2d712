/**
 * The one KV byte accounting: the real cache class of a mode (factory.ts) built on a sizing-only device
 * that hands out size-only buffer records and does no GPU work, reserved for N tokens, and its layerStats()
 * summed. The meter shows layerStats() of the live cache; the model manager's estimates (estimate.ts), the
 * memory budget (engine/kv-sizing.ts) and the tests all read sizes through here, so every number follows the
 * layouts' own allocation rules (growth blocks, rings, scales, retained slots, rotation signs).
 */
import type { GpuCaps } from '../gpu/device';
import type { KvLayerStats, KvModeSpec } from '../worker/api';
import { createKvCache } from './factory';
import type { CacheOptions } from './growing-cache';
import type { KvCache, KvShape } from './types';

/** A buffer that only knows its size. */
function sizedBuffer(size: number, label?: string): GPUBuffer {
  return { size, label: label ?? '', destroy() {} } as unknown as GPUBuffer;
}

/** The few device calls a cache makes while it is created and reserved, none of which does GPU work. */
const sizingDevice = {
  createBuffer: (d: GPUBufferDescriptor) => sizedBuffer(d.size, d.label),
  createCommandEncoder: () => ({ copyBufferToBuffer() {}, finish: () => ({}) }),
  queue: { writeBuffer() {}, submit() {} },
} as unknown as GPUDevice;

/** Device capabilities for sizing: only whether full-precision parts are f16 matters to the layouts. */
export function sizingCaps(kvDtype: 'f32' | 'f16'): GpuCaps {
  return {
    f16: kvDtype === 'f16',
    subgroups: false,
    timestampQuery: false,
    softwareAdapter: false,
    maxBufferSize: 2 ** 31,
    maxStorageBufferBindingSize: 2 ** 31,
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupsPerDimension: 65535,
  };
}

/** Allocated bytes by component, summed over layers, and their total. */
export interface KvAllocation {
  total: number;
  components: Record<string, number>;
}

/**
 * What a fresh cache of `spec` allocates once reserved for `tokens` tokens: its capacity grows in the
 * layout's blocks up to shape.maxTokens (pass maxTokens = tokens for a cache capped at exactly N, as the
 * engine builds under a budget). Throws when the mode cannot be built for this shape.
 */
export function kvAllocation(shape: KvShape, spec: KvModeSpec, tokens: number, kvDtype: 'f32' | 'f16', options: CacheOptions = {}, caps: GpuCaps = sizingCaps(kvDtype)): KvAllocation {
  return tokens <= 0 ? { total: 0, components: {} } : sized(shape, spec, tokens, kvDtype, options, caps, allocationOf);
}

/** Build the real layout on the sizing device, reserve `tokens`, read it, and free it. */
function sized<T>(shape: KvShape, spec: KvModeSpec, tokens: number, kvDtype: 'f32' | 'f16', options: CacheOptions, caps: GpuCaps, read: (cache: KvCache) => T): T {
  const cache = createKvCache(sizingDevice, caps, shape, spec, kvDtype, options);
  try {
    cache.reserve(tokens);
    return read(cache);
  } finally {
    cache.destroy();
  }
}

/** A cache's allocated bytes, summed over its layerStats(), by component. */
export function allocationOf(cache: KvCache): KvAllocation {
  return summedLayers(cache.layerStats());
}

/** Per-layer stats summed: total bytes and bytes by component. */
export function summedLayers(layers: readonly KvLayerStats[]): KvAllocation {
  const components: Record<string, number> = {};
  let total = 0;
  for (const l of layers) {
    total += l.total;
    for (const [k, v] of Object.entries(l.components)) components[k] = (components[k] ?? 0) + v;
  }
  return { total, components };
}

/** What a cache of `spec` capped at exactly `tokens` tokens allocates in all, and its largest single buffer. */
export function kvFootprint(shape: KvShape, spec: KvModeSpec, tokens: number, kvDtype: 'f32' | 'f16'): { total: number; largestBuffer: number } {
  if (tokens <= 0) return { total: 0, largestBuffer: 0 };
  return sized({ ...shape, maxTokens: tokens }, spec, tokens, kvDtype, {}, sizingCaps(kvDtype), (cache) => ({
    total: allocationOf(cache).total,
    largestBuffer: Math.max(0, ...cache.bufferSizes().map((b) => b.bytes)),
  }));
}
