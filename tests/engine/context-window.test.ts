/**
 * Memory budget planning and sink + recent windows (src/engine/context-window.ts), as pure functions.
 */
import { describe, expect, it } from 'vitest';
import {
  ESCALATION_LADDER,
  keptAfterSlide,
  modeLabel,
  planBudget,
  sinkAndRecent,
  tokenLimitForBudget,
  windowPrompt,
} from '../../src/engine/context-window';
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
  it('leaves a fitting prompt alone and windows a long one with a report', () => {
    expect(windowPrompt(ids, 101, 512, 4)).toEqual({ ids });
    const { ids: kept, event } = windowPrompt(ids, 64, 512, 4);
    expect(kept).toEqual([0, 1, 2, 3, ...ids.slice(72)]);
    expect(event).toEqual({ kind: 'window', at: 'prompt', reason: 'budget', droppedTokens: 68, sinkTokens: 4, keptTokens: 32, limitTokens: 64 });
    expect(windowPrompt(ids, 100, 100, 4).event).toMatchObject({ kind: 'window', reason: 'context' });
  });
});
