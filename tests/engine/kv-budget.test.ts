/**
 * The KV memory budget end to end on the GPU (Node + Dawn, stories260k, f32): exact sizing, auto escalation,
 * sink + recent windows during decode and for prompts longer than the context, and that generation goes on.
 */
import { describe, expect, it } from 'vitest';
import { keptAfterSlide, sinkAndRecent } from '../../src/engine/context-window';
import { kvBytesAt } from '../../src/engine/kv-sizing';
import { createKvCache } from '../../src/kv/factory';
import type { KvShape } from '../../src/kv/types';
import type { ContextEvent, KvModeSpec } from '../../src/worker/api';
import { GOLDEN, useLoadedEngine } from '../helpers/hub';
import { nodeGpu } from '../helpers/gpu';
import { acquireDevice } from '../../src/gpu/device';

const MODES: KvModeSpec[] = [
  { mode: 'full' },
  { mode: 'int8' },
  { mode: 'kivi', bits: 4 },
  { mode: 'kivi', bits: 2, residual: 32 },
  { mode: 'merge' },
  { mode: 'merge+kivi', bits: 2 },
  { mode: 'zip' },
];

describe('KV memory budget, stories260k', () => {
  const ctx = useLoadedEngine('local/stories260k', { weightDtype: 'f32', kvDtype: 'f32' });

  it('sizes every mode exactly as the real cache allocates it', async () => {
    const gpu = await acquireDevice(nodeGpu(), { allowF16: false, allowSubgroups: false });
    try {
      const shape: KvShape = { numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, maxTokens: 512, maxStepTokens: 128 };
      for (const spec of MODES) {
        for (const tokens of [1, 64, 100, 300]) {
          const cache = createKvCache(gpu.device, gpu.caps, { ...shape, maxTokens: tokens }, spec, 'f32');
          cache.reserve(tokens);
          const real = cache.bufferSizes().reduce((s, b) => s + b.bytes, 0);
          cache.destroy();
          expect(kvBytesAt(gpu.caps, shape, spec, 'f32', tokens), `${spec.mode} at ${tokens}`).toBe(real);
        }
      }
    } finally {
      gpu.destroy();
    }
  });

  it('auto escalation moves to a stronger mode and the turn completes inside the budget', async () => {
    await ctx.engine.setKvMode({ mode: 'full' });
    const budget = { bytes: 96 * 1024, autoEscalate: true }; // full f32 holds 76 tokens at 1,280 B/token
    const events: ContextEvent[] = [];
    const result = await ctx.engine.generate(GOLDEN.onceUponATime.prompt, { maxNewTokens: 150, stopAtEos: false, kvBudget: budget }, undefined, (e) => events.push(e));
    expect(result.finishReason).toBe('length');
    expect(result.tokenIds.length).toBe(150);
    expect(events[0]).toMatchObject({ kind: 'escalate', fromMode: 'full' });
    expect(result.contextEvents).toEqual(events);
    const stats = ctx.engine.stats();
    expect(stats.kvMode).toBe((events[0] as Extract<ContextEvent, { kind: 'escalate' }>).toMode);
    expect(stats.kvBytes).toBeLessThanOrEqual(budget.bytes);
    expect(stats.tokensHeld).toBe(5 + 149);
  });

  it('without auto, the cache slides to sinks + recent tokens, stays inside the budget and generation goes on', async () => {
    await ctx.engine.setKvMode({ mode: 'full' });
    const budget = { bytes: 64 * 1280, autoEscalate: false }; // exactly 64 tokens in full f32
    const streamed: number[] = [];
    const result = await ctx.engine.generate(
      GOLDEN.tomAndSue.prompt,
      { maxNewTokens: 100, stopAtEos: false, kvBudget: budget, streamStats: true },
      (t) => {
        if (t.tokenId >= 0) streamed.push(t.tokenId);
        expect(t.stats?.kvBytes).toBeLessThanOrEqual(budget.bytes);
      },
    );
    expect(result.finishReason).toBe('length');
    expect(streamed).toEqual(result.tokenIds);
    const windows = (result.contextEvents ?? []).filter((e) => e.kind === 'window');
    expect(windows.length).toBeGreaterThanOrEqual(2);
    expect(windows[0]).toMatchObject({ kind: 'window', at: 'decode', reason: 'budget', sinkTokens: 4, keptTokens: 32, limitTokens: 64 });
    // Before the first slide the cache holds 64 tokens: the prompt (11) and 53 generated ones.
    expect(windows[0].kind === 'window' && windows[0].droppedTokens).toBe(64 - 32);
    expect(ctx.engine.stats().kvBytes).toBeLessThanOrEqual(budget.bytes);
    // The first greedy token is unchanged by the budget.
    expect(result.tokenIds.slice(0, 40)).toEqual(GOLDEN.tomAndSue.ids);
  });

  it('after a slide the next token is what the model predicts from the kept tokens at contiguous positions', async () => {
    await ctx.engine.setKvMode({ mode: 'full' });
    const budget = { bytes: 64 * 1280, autoEscalate: false };
    const prompt = GOLDEN.tomAndSue.promptIds;
    const result = await ctx.engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 56, stopAtEos: false, kvBudget: budget });
    // The slide happens when the cache holds 64 tokens: prompt + 53 generated; the 54th generated token is then fed.
    const history = [...prompt, ...result.tokenIds.slice(0, 53)];
    const kept = sinkAndRecent(history, 4, keptAfterSlide(64, 4));
    const model = ctx.engine.model!;
    model.kv.reset();
    await model.forward(kept, 'none');
    const next = await model.forward([result.tokenIds[53]], 'token');
    expect(next.nextToken).toBe(result.tokenIds[54]);
    model.kv.reset();
  });

  it('a prompt longer than the context keeps its sinks and recent tokens, with a notice, and generates', async () => {
    await ctx.engine.setKvMode({ mode: 'kivi', bits: 4 });
    const longText = Array.from({ length: 120 }, () => 'Tom and Sue went to the park.').join(' ');
    expect(ctx.engine.tokenizer!.encodeText(longText).length).toBeGreaterThan(512);
    const result = await ctx.engine.generate(longText, { maxNewTokens: 8, stopAtEos: false });
    expect(result.tokenIds.length).toBe(8);
    expect(result.contextEvents?.[0]).toMatchObject({ kind: 'window', at: 'prompt', reason: 'context', sinkTokens: 4, keptTokens: 256, limitTokens: 512 });
    expect(ctx.engine.stats().tokensHeld).toBe(256 + 7);
  });

  it('a budget below a minimal window is refused with a clear error, and the ctx.engine stays usable', async () => {
    await expect(ctx.engine.generate('Once upon a time', { maxNewTokens: 4, kvBudget: { bytes: 2048, autoEscalate: true } })).rejects.toThrow(/Raise the memory budget/);
    const ok = await ctx.engine.generate(GOLDEN.onceUponATime.prompt, { maxNewTokens: 5 });
    expect(ok.tokenIds).toEqual(GOLDEN.onceUponATime.ids.slice(0, 5));
  });
});
