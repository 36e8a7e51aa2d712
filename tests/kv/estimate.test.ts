/**
 * estimateKvBytes (what the model manager shows per mode) equals the bytes a real cache of that mode
 * allocates on the GPU after reserving the same number of tokens, for several shapes, modes, token counts
 * and element sizes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireDevice, type GpuContext } from '../../src/gpu/device';
import { estimateKvBytes } from '../../src/kv/estimate';
import { createKvCache } from '../../src/kv/factory';
import type { KvShape } from '../../src/kv/types';
import type { KvModeSpec } from '../../src/worker/api';
import { nodeGpu } from '../helpers/gpu';

const SHAPES: Record<string, KvShape> = {
  stories260k: { numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, maxTokens: 512, maxStepTokens: 128 },
  'smollm2-135m': { numLayers: 30, numHeads: 9, numKvHeads: 3, headDim: 64, maxTokens: 8192, maxStepTokens: 128 },
  'odd-layers': { numLayers: 7, numHeads: 4, numKvHeads: 2, headDim: 16, maxTokens: 300, maxStepTokens: 32 },
};
const MODES: KvModeSpec[] = [
  { mode: 'full' },
  { mode: 'int8' },
  { mode: 'int8', groupSize: 16, residual: 16 },
  { mode: 'kivi', bits: 4 },
  { mode: 'kivi', bits: 2, groupSize: 16, residual: 48 },
  { mode: 'merge' },
  { mode: 'merge', startLayer: 0, retention: 0.25, residual: 16 },
  { mode: 'merge+kivi' },
  { mode: 'merge+kivi', bits: 4, groupSize: 16, residual: 32, startLayer: 1 },
  { mode: 'zip' },
  { mode: 'zip', salientFraction: 0.25, highBits: 8, lowBits: 4, residual: 32 },
];
const TOKENS = [1, 63, 64, 200, 4096];

describe('estimateKvBytes matches real allocations', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireDevice(nodeGpu(), { allowF16: true });
  });
  afterAll(() => gpu?.destroy());

  for (const [name, shape] of Object.entries(SHAPES)) {
    it(name, () => {
      const dtypes: Array<'f32' | 'f16'> = gpu.caps.f16 ? ['f32', 'f16'] : ['f32'];
      let checked = 0;
      for (const dtype of dtypes) {
        for (const spec of MODES) {
          for (const tokens of TOKENS.filter((t) => t <= Math.max(shape.maxTokens, 512))) {
            const cache = createKvCache(gpu.device, gpu.caps, shape, spec, dtype);
            try {
              cache.reserve(tokens);
              const real = cache.bufferSizes().reduce((s, b) => s + b.bytes, 0);
              const layers = cache.layerStats().reduce((s, l) => s + l.total, 0);
              const est = estimateKvBytes(shape, spec, tokens, dtype === 'f16' ? 2 : 4);
              expect(est, `${JSON.stringify(spec)} ${dtype} ${tokens} tokens`).toBe(real);
              expect(layers, `${JSON.stringify(spec)} layerStats`).toBe(real);
              checked++;
            } finally {
              cache.destroy();
            }
          }
        }
      }
      expect(checked).toBeGreaterThan(30);
    });
  }

  it('is zero for an empty cache and grows with the context', () => {
    const shape = SHAPES['smollm2-135m'];
    expect(estimateKvBytes(shape, { mode: 'full' }, 0)).toBe(0);
    // fp16 full cache: 2 × 30 × 3 × 64 × 2 B = 23,040 B per token (shared/models/README.md).
    expect(estimateKvBytes(shape, { mode: 'full' }, 4096)).toBe(23_040 * 4096);
    expect(estimateKvBytes(shape, { mode: 'kivi', bits: 2 }, 4096)).toBeLessThan(estimateKvBytes(shape, { mode: 'int8' }, 4096));
  });
});
