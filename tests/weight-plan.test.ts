/**
 * Weight storage planning: bytes per choice, auto-quantization to fit a memory limit (with a notice), and a
 * named error when an explicit choice or nothing fits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuOutOfMemoryError } from '../src/errors';
import { parseModelConfig } from '../src/model/config';
import { isSensitiveMatrix, onLoadQuantType, useMoreBits } from '../src/model/on-load-quant';
import { plannedBytes, planWeights, type PlannedTensor } from '../src/model/weight-plan';
import { expectedShapes } from '../src/model/weights';
import { sharedModelsDir } from '../scripts/hub-server';

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
    // The q4 mix's sensitive matrices: Q6_K where rows are whole super-blocks, else Q5_0; q8 is Q8_0 throughout.
    expect(onLoadQuantType('q4', 1536, true)).toBe('q6_k');
    expect(onLoadQuantType('q4', 576, true)).toBe('q5_0');
    expect(onLoadQuantType('q8', 576, true)).toBe('q8_0');
    expect(onLoadQuantType('q4', 688, true)).toBeNull();
  });

  it("marks llama.cpp's Q4_K_M more-bits matrices: output (or tied embedding), v/down in use_more_bits layers", () => {
    // llama.cpp's use_more_bits for 30 layers: 0-2, 26-29, and every third from 5.
    expect([...Array(30).keys()].filter((i) => useMoreBits(i, 30))).toEqual([0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
    const c = { numLayers: 30, tieEmbeddings: true };
    expect(isSensitiveMatrix('model.embed_tokens.weight', c)).toBe(true);
    expect(isSensitiveMatrix('model.embed_tokens.weight', { ...c, tieEmbeddings: false })).toBe(false);
    expect(isSensitiveMatrix('lm_head.weight', { ...c, tieEmbeddings: false })).toBe(true);
    expect(isSensitiveMatrix('model.layers.5.self_attn.v_proj.weight', c)).toBe(true);
    expect(isSensitiveMatrix('model.layers.5.mlp.down_proj.weight', c)).toBe(true);
    expect(isSensitiveMatrix('model.layers.6.mlp.down_proj.weight', c)).toBe(false);
    expect(isSensitiveMatrix('model.layers.5.self_attn.k_proj.weight', c)).toBe(false);
    expect(isSensitiveMatrix('model.layers.5.mlp.up_proj.weight', c)).toBe(false);
  });

  it("bar: SmolLM2-135M's real shapes take <= 0.32x the f16 bytes as q4 (the Q4_K_M-style mix) and <= 0.55x as q8", () => {
    const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(sharedModelsDir(), 'smollm2-135m-shape', 'config.json'), 'utf8')));
    const tensors = [...expectedShapes(config)].map(([name, [rows, cols]]) => ({ rows, cols, stored: 'float' as const, sensitive: isSensitiveMatrix(name, config) }));
    const f16 = plannedBytes(tensors, 'f16');
    expect(f16 / 2 ** 20).toBeCloseTo(256.6, 0);
    const q4 = plannedBytes(tensors, 'f16', 'q4') / f16;
    const q8 = plannedBytes(tensors, 'f16', 'q8') / f16;
    expect(q4).toBeLessThanOrEqual(0.32);
    expect(q4).toBeGreaterThan(0.3); // the mix's sensitive matrices take more than uniform 4.5 bits (0.281x)
    expect(q8).toBeLessThanOrEqual(0.55);
    // Without the mix (every matrix 4.5 bits) it would be 0.281x: the sensitive matrices are what the rest pays for.
    expect(plannedBytes(tensors.map((t) => ({ ...t, sensitive: false })), 'f16', 'q4') / f16).toBeCloseTo(0.281, 3);
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
