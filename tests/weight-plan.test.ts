/**
 * Weight storage planning: bytes per choice, auto-quantization to fit a memory limit (with a notice), and a
 * named error when an explicit choice or nothing fits.
 */
import { describe, expect, it } from 'vitest';
import { GpuOutOfMemoryError } from '../src/errors';
import { onLoadQuantType } from '../src/model/on-load-quant';
import { plannedBytes, planWeights, type PlannedTensor } from '../src/model/weight-plan';

// SmolLM2-135M's matrices in one layer-sized stand-in: 576-wide rows (not whole 256-blocks) and 1536-wide ones.
const T: PlannedTensor[] = [
  { rows: 1536, cols: 576, stored: 'float' },
  { rows: 576, cols: 1536, stored: 'float' },
  { rows: 1, cols: 576, stored: 'float' },
];
const F16 = 1536 * 576 * 2 * 2 + 576 * 2;

describe('weight plan', () => {
  it('counts bytes per choice: floats, Q8_0 and 4.5-bit blocks, vectors never quantized', () => {
    expect(plannedBytes(T, 'f16')).toBe(F16);
    expect(plannedBytes(T, 'f32')).toBe(2 * F16);
    expect(plannedBytes(T, 'f16', 'q8')).toBe(1536 * 576 * (34 / 32) * 2 + 576 * 2);
    expect(plannedBytes(T, 'f16', 'q4')).toBe(1536 * 576 * (18 / 32) + 1536 * 576 * (144 / 256) + 576 * 2);
    expect(plannedBytes([{ rows: 10, cols: 256, stored: 'q6_k' }], 'f16')).toBe(10 * 210);
  });

  it('picks the block type per row length', () => {
    expect(onLoadQuantType('q8', 576)).toBe('q8_0');
    expect(onLoadQuantType('q4', 1536)).toMatch(/^q4_[0k]$/);
    expect(onLoadQuantType('q4', 576)).toBe('q4_0');
    expect(onLoadQuantType('q8', 688)).toBeNull();
  });

  it('leaves a plan that fits alone', () => {
    expect(planWeights(T, 'auto', 'f16', F16)).toEqual({ floatDtype: 'f16', quant: undefined, bytes: F16 });
    expect(planWeights(T, 'q4', 'f16')).toMatchObject({ quant: 'q4' });
  });

  it('quantizes to fit a limit under auto, q8 first, with a notice', () => {
    const q8 = planWeights(T, 'auto', 'f16', 0.6 * F16);
    expect(q8).toMatchObject({ quant: 'q8' });
    expect(q8.notice).toMatch(/over the .* set for weights, so they were quantized to q8/);
    expect(planWeights(T, undefined, 'f16', 0.4 * F16)).toMatchObject({ quant: 'q4' });
  });

  it('names the sizes and what to pick when an explicit choice or nothing fits', () => {
    expect(() => planWeights(T, 'f16', 'f16', 0.6 * F16)).toThrow(GpuOutOfMemoryError);
    expect(() => planWeights(T, 'f16', 'f16', 0.6 * F16)).toThrow(/Choose q8/);
    expect(() => planWeights(T, 'auto', 'f16', 0.1 * F16)).toThrow(/Even q4 takes/);
  });
});
