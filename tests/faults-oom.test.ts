/**
 * Out-of-memory faults on the Node engine (Dawn on lavapipe, the local hub server). WebGPU never gives a
 * device less than the spec's default limits, so a small GPU is simulated with LoadOptions.deviceLimits, which
 * the memory plan and every BufferGroup allocation enforce. Each refusal names what fits, and afterwards the
 * same engine loads stories260k and generates the golden text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuOutOfMemoryError, MemoryPlanError } from '../src/errors';
import { allocationLimits, BufferGroup, setAllocationLimits } from '../src/gpu/buffers';
import { acquireDevice, type GpuContext } from '../src/gpu/device';
import { withGpuErrors } from '../src/gpu/error-scopes';
import { FullKvCache } from '../src/kv/full-cache';
import type { ModelSourceSpec } from '../src/model/source';
import type { LoadOptions } from '../src/worker/api';
import { GOLDEN, useHubEngine } from './helpers/hub';
import { nodeGpu } from './helpers/gpu';

const KIB = 1024;
const MIB = 2 ** 20;
const OPTIONS = { weightDtype: 'f32', kvDtype: 'f32' } as const;
/** stories260k at f32: one layer's K (or V) takes 4 kv heads × 8 × 4 B = 128 B a token, 64 KiB at its 512 context. */
const SMALL_GPU: LoadOptions = { ...OPTIONS, prefillChunk: 32, deviceLimits: { maxStorageBufferBindingSize: 48 * KIB } };

const ctx = useHubEngine();
const engine = ctx.engine;

const spec = (name: string): ModelSourceSpec => ({ kind: 'hub', repo: `local/${name}`, baseUrl: ctx.hub.baseUrl });

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function expectGolden(maxNewTokens = 20): Promise<void> {
  const g = GOLDEN.onceUponATime;
  const result = await engine.generate(g.prompt, { maxNewTokens });
  expect(result.tokenIds).toEqual(g.ids.slice(0, maxNewTokens));
}

/** The engine's device (private; tests reach in to lower its allocation limits mid-chat). */
const engineGpu = () => (engine as unknown as { gpu: GpuContext }).gpu;

describe('out-of-memory faults', () => {
  it('fault: oom — SmolLM2-135M weights over the GPU memory are refused by the plan before any weight moves, naming q8/q4; then stories260k loads and generates the golden text', async () => {
    // 200 MiB: the f16 weights (about 257 MiB) do not fit, q8 (about 137 MiB) and q4 do.
    const err = await rejection(engine.load(spec('smollm2-135m-shape'), { deviceLimits: { memoryBytes: 200 * MIB } }));
    expect(err).toBeInstanceOf(MemoryPlanError);
    expect(err.name).toBe('MemoryPlanError');
    expect(err.message).toMatch(/leave no room for a KV cache/);
    expect(err.message).toMatch(/quantized weights \(q8: \d+ MiB, q4: \d+ MiB\)/);
    expect((err as MemoryPlanError).fits.weights?.map((w) => w.dtype)).toEqual(['q8', 'q4']);
    expect(engine.stats().loaded).toBe(false);
    await engine.load(spec('stories260k'), OPTIONS);
    await expectGolden();
  });

  it('fault: oom — a chosen context whose K/V buffers pass the binding limit is refused with the largest context that fits; then stories260k loads and generates the golden text', async () => {
    const err = await rejection(engine.load(spec('stories260k'), { ...SMALL_GPU, contextTokens: 512 }));
    expect(err).toBeInstanceOf(MemoryPlanError);
    expect(err.message).toMatch(/one KV buffer would take 64\.0 KiB|one KV buffer would take 0\.1 MiB/);
    expect(err.message).toMatch(/a context of up to 384 tokens/);
    expect((err as MemoryPlanError).fits.contextTokens).toBe(384);
    expect((err as MemoryPlanError).fits.kvModes?.[0]?.mode).toBe('int8');
    await engine.load(spec('stories260k'), OPTIONS);
    await expectGolden();
  });

  it('fault: oom — the default context is shortened so no K/V buffer passes the binding limit (with a notice), the golden text still comes out, and a long chat slides instead of growing past the limit', async () => {
    const info = await engine.load(spec('stories260k'), SMALL_GPU);
    expect(info.maxPositions).toBe(384);
    expect(info.contextNotice).toMatch(/shortened from 512 to 384 tokens: at 512 tokens one KV buffer would take .*storage binding limit/);
    // Weights over the binding limit (the 128 KiB embedding) are split into parts the kernels read one by one.
    await expectGolden(40);
    const long = await engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 500, stopAtEos: false });
    expect(long.tokenIds.length).toBe(500);
    const sizes = engine.model!.kv.bufferSizes().map((b) => b.bytes);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(48 * KIB);
  });

  it('fault: oom — KV growth past the allocation limit mid-chat raises GpuOutOfMemoryError (no garbage), the cache is freed, and the next turn generates the golden text', async () => {
    await engine.load(spec('stories260k'), OPTIONS);
    await expectGolden(10);
    const device = engineGpu().device;
    const own = allocationLimits(device);
    try {
      // The cache holds 64 slots (8 KiB a buffer); growing to 128+ needs 16 KiB buffers.
      setAllocationLimits(device, { ...own, maxStorageBufferBindingSize: 12 * KIB });
      const err = await rejection(engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 100, stopAtEos: false }));
      expect(err).toBeInstanceOf(GpuOutOfMemoryError);
      expect(err.message).toMatch(/kv-full L0\.k needs one 0\.0 MiB buffer|storage binding limit/);
      expect(engine.stats().kvBytes).toBe(0);
    } finally {
      setAllocationLimits(device, own);
    }
    await expectGolden();
  });

  it('fault: oom — a BufferGroup refuses a buffer over the limits, and a failing KV reserve leaves the cache usable', async () => {
    const gpu = await acquireDevice(nodeGpu(), { limits: { maxBufferSize: 1 * MIB, maxStorageBufferBindingSize: 256 * KIB } });
    try {
      expect(gpu.caps.maxBufferSize).toBe(1 * MIB);
      const group = new BufferGroup(gpu.device, 'test');
      expect(() => group.create('big', 300 * KIB)).toThrow(GpuOutOfMemoryError);
      expect(() => group.create('staging', 2 * MIB, 0x1 | 0x8)).toThrow(/buffer limit/);
      expect(group.create('staging', 300 * KIB, 0x1 | 0x8).size).toBe(300 * KIB);
      group.destroy();
      const cache = new FullKvCache(gpu.device, { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 64, maxTokens: 100_000, maxStepTokens: 1 }, { dtype: 'f32' });
      cache.reserve(256); // 128 KiB a buffer
      expect(() => cache.reserve(1024)).toThrow(GpuOutOfMemoryError); // 512 KiB a buffer
      expect(cache.allocatedTokens).toBe(256);
      cache.reserve(512); // exactly 256 KiB
      expect(cache.allocatedTokens).toBe(512);
      cache.destroy();
    } finally {
      gpu.destroy();
    }
  });

  it('fault: oom — a real allocation failure (a buffer over the device maxBufferSize, bypassing the checks) is caught by the error scopes and becomes GpuOutOfMemoryError; other validation errors stay plain errors', async () => {
    const gpu = await acquireDevice(nodeGpu());
    try {
      const size = gpu.device.limits.maxBufferSize * 2 + 4;
      let created: GPUBuffer | undefined;
      const err = await rejection(
        withGpuErrors(gpu.device, 'a test buffer', () => (created = gpu.device.createBuffer({ size, usage: 0x80 })), () => created?.destroy()),
      );
      expect(err).toBeInstanceOf(GpuOutOfMemoryError);
      expect(err.message).toMatch(/The GPU rejected an allocation while allocating a test buffer: .*max buffer size/i);
      // A validation error that is not about sizes or limits is a bug, not out of memory: a plain Error with its message.
      const bug = await rejection(withGpuErrors(gpu.device, 'a bad buffer', () => gpu.device.createBuffer({ size: 16, usage: 0x1 | 0x80 })));
      expect(bug).not.toBeInstanceOf(GpuOutOfMemoryError);
      expect(bug.message).toMatch(/GPU validation error while setting up a bad buffer: .*usage/i);
      // The device stays usable.
      expect(await withGpuErrors(gpu.device, 'a small buffer', () => gpu.device.createBuffer({ size: 16, usage: 0x80 }).size)).toBe(16);
    } finally {
      gpu.destroy();
    }
  });
});
