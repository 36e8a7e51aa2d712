/**
 * The KV memory budget end to end on the GPU (Node + Dawn, stories260k, f32): exact sizing, auto escalation,
 * eviction in place during decode (window and saliency, with no re-prefill), the re-prefill slide of layouts
 * that cannot evict in place, protected system prompts, prompts longer than the context, and that generation
 * goes on.
 */
import { describe, expect, it } from 'vitest';
import { keptAfterSlide, sinkAndRecent } from '../../src/engine/context-window';
import { kvBytesAt } from '../../src/engine/kv-sizing';
import { createKvCache } from '../../src/kv/factory';
import type { KvShape } from '../../src/kv/types';
import type { ChatMessage, ContextEvent, KvModeSpec } from '../../src/worker/api';
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

  it('without auto, the cache evicts in place (sinks + recent), stays inside the budget, re-prefills nothing and goes on', async () => {
    await ctx.engine.setKvMode({ mode: 'full' });
    const budget = { bytes: 64 * 1280, autoEscalate: false }; // exactly 64 tokens in full f32
    const streamed: number[] = [];
    const prefilledBefore = ctx.engine.stats().prefillTokensDispatched;
    const allocations = new Set<number>();
    const result = await ctx.engine.generate(
      GOLDEN.tomAndSue.prompt,
      { maxNewTokens: 100, stopAtEos: false, kvBudget: budget, streamStats: true },
      (t) => {
        if (t.tokenId >= 0) streamed.push(t.tokenId);
        expect(t.stats?.kvBytes).toBeLessThanOrEqual(budget.bytes);
        allocations.add(t.stats?.kvBytes ?? -1);
      },
    );
    // Under a budget the cache allocates its cap once and never grows (growth would hold old + new at once).
    expect([...allocations]).toEqual([budget.bytes]);
    expect(result.finishReason).toBe('length');
    expect(streamed).toEqual(result.tokenIds);
    const windows = (result.contextEvents ?? []).filter((e) => e.kind === 'window');
    expect(windows.length).toBeGreaterThanOrEqual(2);
    // Kept: 3/4 of the limit, the first 4 (sinks) and the newest 44, at their positions.
    expect(windows[0]).toMatchObject({ kind: 'window', at: 'decode', reason: 'budget', sinkTokens: 4, keptTokens: 48, limitTokens: 64, inPlace: true, policy: 'window', droppedTokens: 16 });
    expect(windows[0].kind === 'window' && windows[0].evictedRanges).toEqual([[4, 20]]);
    const stats = ctx.engine.stats();
    expect(stats.kvBytes).toBeLessThanOrEqual(budget.bytes);
    // Nothing was re-prefilled: only the prompt went through prefill steps.
    expect(stats.prefillTokensDispatched - prefilledBefore).toBe(GOLDEN.tomAndSue.promptIds.length);
    // Positions go on: every token fed so far (the last generated one is not fed) has its own position.
    expect(stats.kvPositions?.nextPosition).toBe(GOLDEN.tomAndSue.promptIds.length + 99);
    expect(stats.kvPositions?.held[0]).toEqual([0, 4]);
    expect(stats.tokensHeld).toBeLessThanOrEqual(64);
    // The first greedy tokens are unchanged by the budget.
    expect(result.tokenIds.slice(0, 40)).toEqual(GOLDEN.tomAndSue.ids);
  });

  it('saliency eviction keeps the most-attended tokens in place, inside the budget (saliency scores included)', async () => {
    await ctx.engine.setKvMode({ mode: 'full' });
    const budget = { bytes: 64 * 1280, autoEscalate: false, eviction: 'saliency' as const };
    const events: ContextEvent[] = [];
    const result = await ctx.engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 100, stopAtEos: false, kvBudget: budget }, undefined, (e) => events.push(e));
    expect(result.tokenIds.length).toBe(100);
    const windows = events.filter((e) => e.kind === 'window');
    expect(windows.length).toBeGreaterThanOrEqual(2);
    for (const w of windows) expect(w).toMatchObject({ inPlace: true, policy: 'saliency', sinkTokens: 4 });
    const stats = ctx.engine.stats();
    expect(stats.kvBytes).toBeLessThanOrEqual(budget.bytes);
    expect(stats.kvComponents.saliency).toBeGreaterThan(0);
    // Saliency keeps tokens from anywhere (here the much-attended first ones beyond the sinks too); the sinks always stay.
    const [start, end] = stats.kvPositions!.held[0];
    expect(start).toBe(0);
    expect(end).toBeGreaterThanOrEqual(4);
    expect(stats.kvPositions!.held.length).toBeGreaterThanOrEqual(2);
  });

  it('int8, kivi and zip evict in place by saliency too (each layout scores with its own reader)', async () => {
    const gpu = await acquireDevice(nodeGpu(), { allowF16: false, allowSubgroups: false });
    const shape: KvShape = { numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, maxTokens: 512, maxStepTokens: 128 };
    const specs: KvModeSpec[] = [{ mode: 'int8' }, { mode: 'kivi', bits: 4, groupSize: 16, residual: 32 }, { mode: 'zip', groupSize: 16, residual: 32 }];
    const budgets = specs.map((spec) => kvBytesAt(gpu.caps, shape, spec, 'f32', 128, { saliency: true }));
    gpu.destroy();
    for (const [i, spec] of specs.entries()) {
      await ctx.engine.setKvMode(spec);
      const before = ctx.engine.stats().prefillTokensDispatched;
      const budget = { bytes: budgets[i], autoEscalate: false, eviction: 'saliency' as const };
      const result = await ctx.engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 200, stopAtEos: false, kvBudget: budget });
      expect(result.tokenIds.length).toBe(200);
      const windows = (result.contextEvents ?? []).filter((e) => e.kind === 'window');
      expect(windows.length, JSON.stringify(spec)).toBeGreaterThanOrEqual(1);
      for (const w of windows) expect(w, JSON.stringify(spec)).toMatchObject({ inPlace: true, policy: 'saliency' });
      const stats = ctx.engine.stats();
      expect(stats.kvBytes).toBeLessThanOrEqual(budget.bytes);
      expect(stats.prefillTokensDispatched - before).toBe(GOLDEN.tomAndSue.promptIds.length);
      expect(stats.kvPositions?.nextPosition).toBe(GOLDEN.tomAndSue.promptIds.length + 199);
    }
  });

  it('a layout that cannot evict in place slides by re-prefilling the kept tokens at contiguous positions', async () => {
    const gpu = await acquireDevice(nodeGpu(), { allowF16: false, allowSubgroups: false });
    const shape: KvShape = { numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, maxTokens: 512, maxStepTokens: 128 };
    const spec: KvModeSpec = { mode: 'merge' };
    const budget = { bytes: kvBytesAt(gpu.caps, shape, spec, 'f32', 64), autoEscalate: false };
    gpu.destroy();
    await ctx.engine.setKvMode(spec);
    const prompt = GOLDEN.tomAndSue.promptIds;
    const result = await ctx.engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 56, stopAtEos: false, kvBudget: budget });
    const first = (result.contextEvents ?? []).find((e) => e.kind === 'window');
    expect(first).toMatchObject({ kind: 'window', at: 'decode', inPlace: false, reprefillBecause: 'layout', keptTokens: 32, sinkTokens: 4, limitTokens: 64 });
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

  it('keeps a chat\'s system prompt and role markers through evictions, and the next turn prefills only its new tokens', async () => {
    await ctx.engine.setKvMode({ mode: 'full' });
    const budget = { bytes: 96 * 1280, autoEscalate: false };
    const chat: ChatMessage[] = [
      { role: 'system', content: 'Tom is a big dog who likes the park.' },
      { role: 'user', content: 'Once upon a time' },
    ];
    const events: ContextEvent[] = [];
    const first = await ctx.engine.generate(chat, { maxNewTokens: 120, stopAtEos: false, kvBudget: budget }, undefined, (e) => events.push(e));
    const windows = events.filter((e): e is Extract<ContextEvent, { kind: 'window' }> => e.kind === 'window');
    expect(windows.length).toBeGreaterThanOrEqual(1);
    const stats = ctx.engine.stats();
    const positions = stats.kvPositions!;
    const protectedCount = positions.protected.reduce((n, [a, b]) => n + b - a, 0);
    // "System: " … "\nUser: " … "\nAssistant:" and the system prompt's own tokens.
    expect(protectedCount).toBeGreaterThan(12);
    expect(positions.protectedHeld).toBe(protectedCount);
    for (const w of windows) expect(w).toMatchObject({ inPlace: true, protectedDropped: 0 });
    expect(windows[0].protectedKept).toBe(protectedCount);
    const held = (p: number) => positions.held.some(([a, b]) => p >= a && p < b);
    for (const [a, b] of positions.protected) for (let p = a; p < b; p++) expect(held(p), `protected position ${p}`).toBe(true);
    const tokenizer = ctx.engine.tokenizer!;
    const systemIds = tokenizer.encodeText('Tom is a big dog who likes the park.').slice(1);
    const heldText = tokenizer.decode(positions.held.flatMap(([a, b]) => tokenizer.encodeChat(chat).concat(first.tokenIds).slice(a, b)));
    expect(heldText).toContain(tokenizer.decode(systemIds).trim());

    // The next turn: the cache already holds the chat (kept positions); only the new message's tokens are prefilled.
    const before = ctx.engine.stats().prefillTokensDispatched;
    const next: ChatMessage[] = [...chat, { role: 'assistant', content: first.text }, { role: 'user', content: 'The next day,' }];
    await ctx.engine.generate(next, { maxNewTokens: 8, stopAtEos: false, kvBudget: budget });
    const added = ctx.engine.stats().prefillTokensDispatched - before;
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThan(tokenizer.encodeText('\nUser: The next day,\nAssistant:').length + 4);
    expect(ctx.engine.stats().kvPositions!.protectedHeld).toBeGreaterThan(protectedCount);

    // A mode switch re-prefills what the cache holds at its own positions: the evictions survive it.
    const was = ctx.engine.stats();
    const switched = await ctx.engine.setKvMode({ mode: 'int8' });
    expect(switched.kvPositions).toEqual(was.kvPositions);
    expect(switched.tokensHeld).toBe(was.tokensHeld);
    expect(switched.prefillTokensDispatched - was.prefillTokensDispatched).toBe(was.tokensHeld);
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
