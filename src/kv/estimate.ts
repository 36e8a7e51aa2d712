/**
 * KV cache bytes a mode would allocate for a number of tokens, without a GPU: the real layout's allocation
 * through the one byte accounting (sizing.ts). The model manager shows these next to each model;
 * tests/kv/estimate.test.ts checks them against caches on a real device.
 */
import type { KvModeSpec } from '../worker/api';
import { kvAllocation } from './sizing';
import type { KvShape } from './types';

/**
 * Bytes a fresh cache of mode `spec` allocates to hold `tokens` tokens. `elementBytes` is the size of a
 * full-precision K/V element: 2 (f16, adapters with shader-f16) or 4 (f32).
 */
export function estimateKvBytes(shape: KvShape, spec: KvModeSpec, tokens: number, elementBytes: 2 | 4 = 2): number {
  return kvAllocation(shape, spec, tokens, elementBytes === 2 ? 'f16' : 'f32').total;
}
