/**
 * Builds the KV cache layout a mode spec asks for.
 */
import type { GpuCaps } from '../gpu/device';
import type { KvModeSpec } from '../worker/api';
import { FullKvCache } from './full-cache';
import type { KvCache, KvShape } from './types';

/** Element type used for full-precision K/V on this device. */
export function fullPrecisionKvDtype(caps: GpuCaps, requested: 'auto' | 'f32' | 'f16' = 'auto'): 'f32' | 'f16' {
  if (requested === 'f16' && !caps.f16) throw new RangeError('f16 KV storage needs the shader-f16 feature, which this adapter lacks.');
  if (requested === 'auto') return caps.f16 ? 'f16' : 'f32';
  return requested;
}

/** Create the cache for `spec`. */
export function createKvCache(device: GPUDevice, caps: GpuCaps, shape: KvShape, spec: KvModeSpec, kvDtype: 'f32' | 'f16'): KvCache {
  switch (spec.mode) {
    case 'full':
      return new FullKvCache(device, shape, { dtype: kvDtype });
    default:
      throw new RangeError(`Unknown KV cache mode ${(spec as { mode: string }).mode}`);
  }
}
