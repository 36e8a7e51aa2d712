/**
 * The memory plan (pure, no GPU): weights + activations + KV at the context against the device limits and the
 * user's budgets, with real model shapes (Llama-3.2-1B, SmolLM2-135M) and the one KV byte accounting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedModelsDir } from '../../scripts/hub-server';
import { planLoad, planMemory, type MemoryPlanInput } from '../../src/engine/memory-plan';
import { MemoryPlanError } from '../../src/errors';
import { parseModelConfig } from '../../src/model/config';
import { plannedBytes } from '../../src/model/weight-plan';
import { expectedShapes } from '../../src/model/weights';
import { kvFootprint } from '../../src/kv/sizing';
import type { GpuCaps } from '../../src/gpu/device';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/** Llama-3.2-1B: 16 layers, 8 KV heads of 64, a 131072-token context; f16 weights about 2.3 GiB (tied embedding). */
const LLAMA_1B: MemoryPlanInput = {
  modelContext: 131072,
  weights: { bytes: 2.47e9, dtype: 'f16', alternatives: [{ dtype: 'q8', bytes: 1.31e9 }, { dtype: 'q4', bytes: 0.77e9 }] },
  activationBuffers: [128 * 8192 * 4, 128 * 8192 * 4, 128256 * 4],
  kv: { shape: { numLayers: 16, numHeads: 32, numKvHeads: 8, headDim: 64, maxTokens: 131072, maxStepTokens: 128 }, spec: { mode: 'full' }, dtype: 'f16' },
  caps: { maxBufferSize: 2 * GIB, maxStorageBufferBindingSize: 128 * MIB, memoryBytes: 4 * GIB },
};

function refusal(f: () => unknown): MemoryPlanError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(MemoryPlanError);
    return err as MemoryPlanError;
  }
  throw new Error('expected MemoryPlanError');
}

describe('memory plan', () => {
  it('fault: oom — Llama-3.2-1B at its 131072 context (4 GiB of f16 KV) under a 4 GiB GPU is shortened to the largest context that fits, with a notice', () => {
    const plan = planMemory(LLAMA_1B);
    expect(plan.contextTokens).toBeLessThan(131072);
    expect(plan.contextTokens).toBeGreaterThan(50_000);
    const total = plan.weightBytes + plan.activationBytes + plan.kvBytes;
    expect(total).toBeLessThanOrEqual(4 * GIB);
    const oneMore = kvFootprint({ ...LLAMA_1B.kv.shape }, { mode: 'full' }, plan.contextTokens + 1, 'f16').total;
    expect(plan.weightBytes + plan.activationBytes + oneMore).toBeGreaterThan(4 * GIB);
    expect(plan.notice).toMatch(/shortened from 131072 to \d+ tokens: at 131072 tokens the KV cache would take 4096 MiB/);
  });

  it('fault: oom — without a memory estimate, f32 K/V at 131072 tokens (256 MiB a buffer) is capped at the 128 MiB binding limit', () => {
    const plan = planMemory({ ...LLAMA_1B, kv: { ...LLAMA_1B.kv, dtype: 'f32' }, caps: { ...LLAMA_1B.caps, memoryBytes: undefined } });
    expect(plan.contextTokens).toBe(65536);
    expect(plan.notice).toMatch(/one KV buffer would take 256 MiB, over the 128 MiB storage binding limit/);
  });

  it('fault: oom — a chosen context that does not fit is refused with the context, stronger KV modes and quantized weights that fit', () => {
    const err = refusal(() => planMemory({ ...LLAMA_1B, contextTokens: 131072 }));
    expect(err.name).toBe('MemoryPlanError');
    expect(err.fits.contextTokens).toBe(planMemory(LLAMA_1B).contextTokens);
    expect(err.fits.kvModes?.map((m) => m.mode)).toContain('kivi-4');
    expect(err.fits.kvModes?.find((m) => m.mode === 'kivi-4')?.contextTokens).toBe(131072);
    expect(err.fits.weights?.map((w) => w.dtype)).toEqual(['q8', 'q4']);
    expect(err.message).toMatch(/What fits: a context of up to \d+ tokens; or a stronger KV mode \(int8: \d+ tokens, kivi-4: 131072 tokens/);
    // A stronger mode that fits the chosen context is accepted.
    expect(planMemory({ ...LLAMA_1B, contextTokens: 131072, kv: { ...LLAMA_1B.kv, spec: { mode: 'kivi', bits: 4 } } }).contextTokens).toBe(131072);
  });

  it('fault: oom — the user budgets count: a memory budget below the weights is refused naming q8/q4, a KV budget caps the context', () => {
    const err = refusal(() => planMemory({ ...LLAMA_1B, memoryBudgetBytes: 2 * GIB }));
    expect(err.message).toMatch(/leave no room for a KV cache in the memory budget \(2048 MiB\)/);
    expect(err.fits.weights?.map((w) => w.dtype)).toEqual(['q8', 'q4']);
    const kvBudget = planMemory({ ...LLAMA_1B, kvBudgetBytes: 256 * MIB });
    expect(kvBudget.kvBytes).toBeLessThanOrEqual(256 * MIB);
    expect(kvBudget.contextTokens).toBe(8192);
  });

  it('fault: oom — SmolLM2-135M (8192 context, 3 MiB f16 K per layer) on a 2 MiB binding limit: planLoad caps the context so no KV buffer passes it; a too-large activation is refused', () => {
    const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(sharedModelsDir(), 'smollm2-135m-shape', 'config.json'), 'utf8')));
    const tensors = [...expectedShapes(config).values()].map(([rows, cols]) => ({ rows, cols, stored: 'float' as const }));
    const weights = { bytes: plannedBytes(tensors, 'f16'), dtype: 'f16', alternatives: (['q8', 'q4'] as const).map((dtype) => ({ dtype, bytes: plannedBytes(tensors, 'f16', dtype) })) };
    const caps = { f16: true, maxBufferSize: 256 * MIB, maxStorageBufferBindingSize: 2 * MIB } as GpuCaps;
    const plan = planLoad({ config, options: { prefillChunk: 64 }, caps, weights });
    expect(plan.contextTokens).toBe(Math.floor((2 * MIB) / (3 * 64 * 2)));
    const shape = { numLayers: 30, numHeads: 9, numKvHeads: 3, headDim: 64, maxTokens: plan.contextTokens, maxStepTokens: 64 };
    expect(kvFootprint(shape, { mode: 'full' }, plan.contextTokens, 'f16').largestBuffer).toBeLessThanOrEqual(2 * MIB);
    // gate/up at 1024 prompt tokens per step: 1024 × 1536 × 4 B = 6 MiB.
    expect(refusal(() => planLoad({ config, options: { prefillChunk: 1024 }, caps, weights })).message).toMatch(/activation buffer .* Lower the prefill chunk/);
  });

  it('small float weights on a full cache: activations count the fused decode step\'s packed copy (not for q8, other KV modes or > 8 MiB)', () => {
    const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(sharedModelsDir(), 'smollm2-135m-shape', 'config.json'), 'utf8')));
    const caps = { f16: true, maxBufferSize: 256 * MIB, maxStorageBufferBindingSize: 128 * MIB } as GpuCaps;
    const plan = (bytes: number, dtype: string, kvMode?: { mode: 'kivi'; bits: 4 }) =>
      planLoad({ config, options: { prefillChunk: 64, contextTokens: 256, kvMode }, caps, weights: { bytes, dtype, alternatives: [] } }).activationBytes;
    const base = plan(1 * MIB, 'q8');
    expect(plan(1 * MIB, 'f32')).toBe(base + MIB);
    expect(plan(1 * MIB, 'f16')).toBe(base + MIB);
    expect(plan(9 * MIB, 'f32')).toBe(base);
    expect(plan(1 * MIB, 'f32', { mode: 'kivi', bits: 4 })).toBe(base);
  });
});
