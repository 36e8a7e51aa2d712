/**
 * The divergence metrics (src/engine/divergence.ts) on hand-computed cases: KL of known distributions,
 * percentiles, top-1, and window statistics over all N and the last quarter.
 */
import { describe, expect, it } from 'vitest';
import { allAndLastQuarter, emptyScores, klDivergence, logSoftmaxRow, percentile, scorePosition, windowStats } from '../../src/engine/divergence';

describe('divergence metrics', () => {
  it('log softmax and KL match closed forms', () => {
    const p = logSoftmaxRow([0, 0], 0, 2);
    expect(Math.exp(p[0])).toBeCloseTo(0.5, 12);
    const q = logSoftmaxRow([Math.log(3), 0], 0, 2); // q = (0.75, 0.25)
    expect(Math.exp(q[0])).toBeCloseTo(0.75, 12);
    // KL((.5,.5) ‖ (.75,.25)) = .5 ln(.5/.75) + .5 ln(.5/.25)
    expect(klDivergence(p, q)).toBeCloseTo(0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(2), 12);
    expect(klDivergence(q, q)).toBe(0);
    // An offset row inside a larger buffer.
    logSoftmaxRow([9, 9, 1, 1], 2, 2).forEach((v, j) => expect(v).toBeCloseTo(p[j], 12));
  });

  it('percentile is nearest-rank', () => {
    const xs = Array.from({ length: 200 }, (_, i) => 200 - i); // 200 … 1
    expect(percentile(xs, 0.99)).toBe(198);
    expect(percentile(xs, 1)).toBe(200);
    expect(percentile([5], 0.99)).toBe(5);
  });

  it('window statistics cover all N and the last quarter separately', () => {
    const s = emptyScores();
    const flat = logSoftmaxRow([0, 1, 0, 0], 0, 4); // argmax 1, not the reference's 0
    const peaked = logSoftmaxRow([4, 0, 0, 0], 0, 4);
    // 6 positions where the candidate equals the reference, then 2 where it does not (the last quarter).
    for (let i = 0; i < 8; i++) scorePosition(s, peaked, i < 6 ? peaked : flat, 0);
    const { all, lastQuarter } = allAndLastQuarter(s, 8);
    expect(lastQuarter.from).toBe(6);
    expect(lastQuarter.top1).toBe(0);
    expect(all.top1).toBe(6 / 8);
    const kl = klDivergence(peaked, flat);
    expect(lastQuarter.klMean).toBeCloseTo(kl, 12);
    expect(all.klMean).toBeCloseTo((2 * kl) / 8, 12);
    expect(lastQuarter.deltaPct).toBeCloseTo(100 * (Math.exp(-flat[0] + peaked[0]) - 1), 9);
    expect(all.klP99).toBeCloseTo(kl, 12);
    expect(() => windowStats(s, 4, 9)).toThrow(RangeError);
  });
});
