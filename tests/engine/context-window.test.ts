/**
 * Memory budget planning (src/engine/context-window.ts), eviction plans (eviction-plan.ts), the cache's
 * position bookkeeping (cache-contents.ts) and prompt windows (cache-window.ts), as pure functions.
 */
import { describe, expect, it } from 'vitest';
import { CacheContents } from '../../src/engine/cache-contents';
import { windowPromptIds } from '../../src/engine/cache-window';
import { carryParams, ESCALATION_LADDER, keptAfterSlide, modeLabel, planBudget, sinkAndRecent, tokenLimitForBudget } from '../../src/engine/context-window';
import { anySlot, planKeep } from '../../src/engine/eviction-plan';
import { KvBudgetTooSmallError } from '../../src/errors';
import type { KvModeSpec } from '../../src/worker/api';

/** Bytes per token of each ladder mode in a toy model (strictly decreasing along the ladder). */
const PER_TOKEN: Record<string, number> = { full: 1000, int8: 520, 'kivi-4': 320, zip: 250, 'kivi-2': 190, 'merge+kivi-2': 150 };
const toyEstimate = (spec: KvModeSpec, tokens: number) => PER_TOKEN[modeLabel(spec)] * tokens;

describe('tokenLimitForBudget', () => {
  it('finds the largest token count that fits', () => {
    expect(tokenLimitForBudget((t) => 10 * t, 1000, 4096)).toBe(100);
    expect(tokenLimitForBudget((t) => 10 * t, 1009, 4096)).toBe(100);
    expect(tokenLimitForBudget((t) => 10 * t + 500, 499, 4096)).toBe(0);
  });
  it('is capped by the context', () => {
    expect(tokenLimitForBudget((t) => t, 1e9, 512)).toBe(512);
  });
  it('handles step-shaped allocations (whole growth blocks)', () => {
    const blocky = (t: number) => Math.ceil(t / 64) * 64 * 10;
    expect(tokenLimitForBudget(blocky, 1280, 4096)).toBe(128);
    expect(tokenLimitForBudget(blocky, 1279, 4096)).toBe(64);
  });
});

describe('planBudget', () => {
  it('changes nothing without a budget', () => {
    const plan = planBudget({ mode: 'full' }, 300, 2048, undefined, toyEstimate);
    expect(plan).toEqual({ spec: { mode: 'full' }, limitTokens: 2048, events: [] });
  });

  it('escalates to the first ladder mode that holds the turn', () => {
    const plan = planBudget({ mode: 'full' }, 300, 2048, { bytes: 100_000, autoEscalate: true }, toyEstimate);
    expect(modeLabel(plan.spec)).toBe('kivi-4'); // int8 holds 192 tokens, kivi-4 holds 312
    expect(plan.limitTokens).toBe(312);
    expect(plan.events).toEqual([
      { kind: 'escalate', fromMode: 'full', toMode: 'kivi-4', spec: { mode: 'kivi', bits: 4 }, neededTokens: 300, limitTokens: 312, budgetBytes: 100_000 },
    ]);
  });

  it('takes the mode holding the most tokens when none holds the turn, and the window does the rest', () => {
    const plan = planBudget({ mode: 'int8' }, 2000, 2048, { bytes: 100_000, autoEscalate: true }, toyEstimate);
    expect(modeLabel(plan.spec)).toBe('merge+kivi-2');
    expect(plan.limitTokens).toBe(666);
  });

  it('keeps the mode without auto, limiting the tokens instead', () => {
    const plan = planBudget({ mode: 'full' }, 300, 2048, { bytes: 100_000, autoEscalate: false }, toyEstimate);
    expect(plan.spec).toEqual({ mode: 'full' });
    expect(plan.limitTokens).toBe(100);
    expect(plan.events).toEqual([]);
  });

  it('never escalates to a weaker mode', () => {
    const plan = planBudget({ mode: 'merge+kivi', bits: 2 }, 2000, 2048, { bytes: 100_000, autoEscalate: true }, toyEstimate);
    expect(plan.spec).toEqual({ mode: 'merge+kivi', bits: 2 });
    expect(plan.events).toEqual([]);
  });

  it('skips modes that cannot be built for the model', () => {
    const estimate = (spec: KvModeSpec, t: number) => (spec.mode === 'merge+kivi' ? Infinity : toyEstimate(spec, t));
    const plan = planBudget({ mode: 'full' }, 2000, 2048, { bytes: 100_000, autoEscalate: true }, estimate);
    expect(modeLabel(plan.spec)).toBe('kivi-2');
  });

  it('refuses, with a named error, a budget that holds less than a minimal window', () => {
    expect(() => planBudget({ mode: 'full' }, 300, 2048, { bytes: 20_000, autoEscalate: false }, toyEstimate)).toThrow(KvBudgetTooSmallError);
    expect(() => planBudget({ mode: 'full' }, 300, 2048, { bytes: 20_000, autoEscalate: false }, toyEstimate)).toThrow(/enable "auto"/);
  });

  it('the ladder goes from weakest to strongest compression', () => {
    const perToken = ESCALATION_LADDER.map((s) => toyEstimate(s, 1));
    expect([...perToken].sort((a, b) => b - a)).toEqual(perToken);
  });
});

describe('sink + recent windows', () => {
  const ids = Array.from({ length: 100 }, (_, i) => i);
  it('keeps the sinks and the most recent ids', () => {
    expect(sinkAndRecent(ids, 4, 10)).toEqual([0, 1, 2, 3, 94, 95, 96, 97, 98, 99]);
    expect(sinkAndRecent(ids.slice(0, 8), 4, 10)).toEqual(ids.slice(0, 8));
  });
  it('keeps half the limit after a slide, at least the sinks plus one', () => {
    expect(keptAfterSlide(64, 4)).toBe(32);
    expect(keptAfterSlide(6, 4)).toBe(5);
  });
  it('windows a prompt longer than the context before its prefill: sinks, protected and latest ids, ranges remapped', () => {
    const { ids: kept, ranges, event } = windowPromptIds(ids, [[10, 14]], { limit: 64, maxContext: 64, sinks: 4, reason: 'positions' });
    expect(kept).toEqual([0, 1, 2, 3, 10, 11, 12, 13, ...ids.slice(76)]);
    expect(ranges).toEqual([[4, 8]]);
    expect(event).toMatchObject({ kind: 'window', at: 'prompt', reason: 'context', droppedTokens: 68, sinkTokens: 4, keptTokens: 32, inPlace: false, reprefillBecause: 'positions', protectedKept: 4 });
    expect(event.kind === 'window' && event.evictedRanges).toEqual([[4, 10], [14, 76]]);
  });
});

describe('planBudget with the user\'s mode', () => {
  const budget = { bytes: 100_000, autoEscalate: true };
  it('carries the user\'s G and R into the stronger mode', () => {
    const user: KvModeSpec = { mode: 'kivi', bits: 4, groupSize: 64, residual: 128 };
    const plan = planBudget(user, 450, 2048, budget, toyEstimate);
    expect(plan.spec).toEqual({ mode: 'kivi', bits: 2, groupSize: 64, residual: 128 }); // zip holds 400, kivi-2 holds 526
    expect(plan.events[0]).toMatchObject({ kind: 'escalate', fromMode: 'kivi-4', toMode: 'kivi-2' });
    expect(carryParams({ mode: 'merge', startLayer: 3, t: 0.5, residual: 32 }, { mode: 'merge+kivi', bits: 2 })).toEqual({ mode: 'merge+kivi', bits: 2, startLayer: 3, t: 0.5, residual: 32 });
    expect(carryParams({ mode: 'kivi', bits: 2, groupSize: 64 }, { mode: 'kivi', bits: 2 })).toEqual({ mode: 'kivi', bits: 2, groupSize: 64 });
  });
  it('falls back to the rung\'s defaults where the user\'s parameters cannot build it', () => {
    // int8 with no residual: a KIVI rung with R = 0 is invalid (the estimator says Infinity).
    const estimate = (spec: KvModeSpec, t: number) => ('residual' in spec && spec.residual === 0 && spec.mode !== 'int8' ? Infinity : toyEstimate(spec, t));
    const plan = planBudget({ mode: 'int8', groupSize: 32, residual: 0 }, 300, 2048, budget, estimate);
    expect(plan.spec).toEqual({ mode: 'kivi', bits: 4 });
  });
  it('steps back down to the user\'s mode when the budget allows it again', () => {
    const plan = planBudget({ mode: 'kivi', bits: 4 }, 50, 2048, budget, toyEstimate, { mode: 'full' });
    expect(plan.spec).toEqual({ mode: 'full' });
    expect(plan.limitTokens).toBe(100);
    expect(plan.events).toEqual([{ kind: 'step-down', fromMode: 'kivi-4', toMode: 'full', spec: { mode: 'full' }, neededTokens: 50, limitTokens: 100, budgetBytes: 100_000 }]);
    // Partly: from kivi-2 to kivi-4 when kivi-4 holds the turn again; no budget at all: the user's mode.
    expect(planBudget({ mode: 'kivi', bits: 2 }, 300, 2048, budget, toyEstimate, { mode: 'full' }).events[0]).toMatchObject({ kind: 'step-down', toMode: 'kivi-4' });
    expect(planBudget({ mode: 'kivi', bits: 2 }, 300, 2048, undefined, toyEstimate, { mode: 'full' }).events[0]).toMatchObject({ kind: 'step-down', toMode: 'full', budgetBytes: null });
  });
  it('stays in the escalated mode without an event while the turn still needs it', () => {
    const plan = planBudget({ mode: 'kivi', bits: 4 }, 300, 2048, budget, toyEstimate, { mode: 'full' });
    expect(plan.spec).toEqual({ mode: 'kivi', bits: 4 });
    expect(plan.events).toEqual([]);
  });
});

describe('eviction plans', () => {
  const positions = Array.from({ length: 40 }, (_, i) => i);
  const none = () => false;
  it('window: the oldest unprotected slots go; sinks, protected and recent ones stay', () => {
    const plan = planKeep({ positions, isProtected: (p) => p >= 8 && p < 10, keep: 20, sinks: 4, recent: 4, rules: anySlot(40), policy: 'window' })!;
    expect(plan.keep).toEqual([0, 1, 2, 3, 8, 9, ...positions.slice(26)]);
    expect(plan).toMatchObject({ dropped: 20, sinksKept: 4, protectedKept: 2, protectedDropped: 0, policy: 'window', droppedRanges: [[4, 8], [10, 26]] });
  });
  it('saliency: the lowest normalized saliency goes first, outside the sinks and the recent window', () => {
    const saliency = Float32Array.from(positions, (p) => (p % 5 === 0 ? 1 : 0.01 * p));
    const plan = planKeep({ positions, isProtected: none, keep: 20, sinks: 4, recent: 10, rules: anySlot(40), policy: 'saliency', saliency })!;
    expect(plan.policy).toBe('saliency');
    for (const p of [5, 10, 15, 20, 25]) expect(plan.keep).toContain(p);
    expect(plan.keep.slice(-10)).toEqual(positions.slice(30));
    expect(planKeep({ positions, isProtected: none, keep: 20, sinks: 4, recent: 10, rules: anySlot(40), policy: 'saliency', saliency: null })!.policy).toBe('window');
  });
  it('keeps whole blocks, drops a multiple at a time, never the residual from the frontier on', () => {
    const plan = planKeep({ positions, isProtected: (p) => p === 13, keep: 30, sinks: 4, recent: 1, rules: { block: 8, multiple: 16, frontier: 32 }, policy: 'window' })!;
    // Block 0 holds the sinks, block 1 a protected slot: blocks 2 and 3 go (16 slots, the first multiple ≥ 10).
    expect(plan.keep).toEqual([...positions.slice(0, 16), ...positions.slice(32)]);
    expect(planKeep({ positions, isProtected: none, keep: 30, sinks: 4, recent: 1, rules: { block: 8, multiple: 16, frontier: 12 }, policy: 'window' })).toBeNull();
  });
  it('drops protected slots only when nothing else frees enough, and says so', () => {
    const plan = planKeep({ positions, isProtected: (p) => p < 30, keep: 20, sinks: 4, recent: 4, rules: anySlot(40), policy: 'window' })!;
    expect(plan.dropped).toBe(20);
    expect(plan.protectedDropped).toBe(14);
    expect(plan.keep.slice(0, 4)).toEqual([0, 1, 2, 3]);
  });
});

describe('cache contents', () => {
  it('tracks kept positions across evictions, cuts and protection', () => {
    const c = new CacheContents();
    c.protect([[2, 4]]);
    c.push([10, 11, 12, 13, 14, 15, 16, 17]);
    c.keepSlots([0, 1, 2, 3, 6, 7]);
    expect(c.positions).toEqual([0, 1, 2, 3, 6, 7]);
    expect(c.heldIds()).toEqual([10, 11, 12, 13, 16, 17]);
    expect(c.matches({ length: 6, nextPosition: 8 })).toBe(true);
    expect(c.slotsBelow(7)).toBe(5);
    c.push([18]);
    expect(c.report()).toEqual({ nextPosition: 9, held: [[0, 4], [6, 9]], protected: [[2, 4]], protectedHeld: 2 });
    c.cut(3);
    expect(c.positions).toEqual([0, 1, 2]);
    expect(c.report()).toMatchObject({ nextPosition: 3, protected: [[2, 3]] });
    c.dropLast(1);
    expect(c.ids).toEqual([10, 11]);
  });
});
