import { describe, expect, it } from 'vitest';
import { argmax, createRng, normalizeSamplingParams, Sampler, type SamplingParams } from '../src/engine/sampler';

const base: SamplingParams = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1234 };
const sampler = (p: Partial<SamplingParams>) => new Sampler({ ...base, ...p });

function softmax(x: number[]): number[] {
  const m = x.reduce((a, b) => Math.max(a, b), -Infinity);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Empirical token frequencies over `draws` samples. */
function frequencies(s: Sampler, logits: number[], draws: number, recent: number[] = []): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  const l = Float32Array.from(logits);
  for (let i = 0; i < draws; i++) counts[s.sample(l, recent)]++;
  return counts.map((c) => c / draws);
}

function maxAbsDiff(a: number[], b: number[]): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function randomLogits(n: number, seed: number, scale = 3): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() + rng() + rng() - 1.5) * scale;
  return out;
}

describe('createRng', () => {
  it('returns floats in [0, 1) with a sane mean, deterministically', () => {
    const a = createRng(42);
    const b = createRng(42);
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const x = a();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      expect(b()).toBe(x);
      sum += x;
    }
    expect(Math.abs(sum / 10000 - 0.5)).toBeLessThan(0.02);
    expect(createRng(43)()).not.toBe(createRng(42)());
    expect(createRng(0)()).not.toBe(createRng(0x100000000 + 1)());
  });
});

describe('normalizeSamplingParams', () => {
  it('fills defaults: greedy, no penalty, 256 tokens, stop at EOS, a reported seed', () => {
    const p = normalizeSamplingParams({});
    expect(p).toMatchObject({ temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxNewTokens: 256, stopAtEos: true, stop: [] });
    expect(Number.isSafeInteger(p.seed)).toBe(true);
    expect(normalizeSamplingParams({ seed: 7, stop: ['', '\n'] })).toMatchObject({ seed: 7, stop: ['\n'] });
    expect(normalizeSamplingParams(undefined).maxNewTokens).toBe(256);
  });

  it.each([
    [{ temperature: -0.1 }, /temperature/],
    [{ temperature: NaN }, /temperature/],
    [{ temperature: Infinity }, /temperature/],
    [{ topK: -1 }, /topK/],
    [{ topK: 2.5 }, /topK/],
    [{ topP: 0 }, /topP/],
    [{ topP: 1.01 }, /topP/],
    [{ topP: -0.5 }, /topP/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty/],
    [{ repetitionPenalty: -1 }, /repetitionPenalty/],
    [{ maxNewTokens: 0 }, /maxNewTokens/],
    [{ maxNewTokens: 1.5 }, /maxNewTokens/],
    [{ seed: 0.5 }, /seed/],
    [{ stop: [3 as unknown as string] }, /stop/],
  ])('rejects %o', (params, message) => {
    expect(() => normalizeSamplingParams(params)).toThrow(RangeError);
    expect(() => normalizeSamplingParams(params)).toThrow(message);
  });
});

describe('Sampler', () => {
  const logits = [0.3, 2.1, -1, 1.7, 0.9, 2.05];

  it('is greedy (argmax, lowest index on ties) at temperature 0', () => {
    const s = sampler({ temperature: 0 });
    expect(s.isGreedy).toBe(true);
    expect(s.sample(Float32Array.from(logits), [])).toBe(1);
    expect(s.sample(Float32Array.from([1, 5, 5, 2]), [])).toBe(1);
    expect(argmax([-Infinity, NaN, -3])).toBe(2);
    expect(sampler({ temperature: 0, repetitionPenalty: 1.1 }).isGreedy).toBe(false);
    expect(sampler({ temperature: 0.7 }).isGreedy).toBe(false);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const l = randomLogits(1000, 5, 1);
    const seq = (seed: number) => {
      const s = sampler({ seed, temperature: 1.2, topK: 50, topP: 0.95 });
      return Array.from({ length: 50 }, () => s.sample(l, []));
    };
    expect(seq(99)).toEqual(seq(99));
    expect(seq(99)).not.toEqual(seq(100));
  });

  it('topK=1 and a tiny topP both reduce to argmax', () => {
    const l = randomLogits(5000, 3);
    const best = argmax(l);
    const k1 = sampler({ topK: 1, temperature: 2 });
    const p0 = sampler({ topP: 1e-6, temperature: 2 });
    for (let i = 0; i < 100; i++) {
      expect(k1.sample(l, [])).toBe(best);
      expect(p0.sample(l, [])).toBe(best);
    }
  });

  it('matches the softmax distribution at temperature 1 over 20k draws', () => {
    const f = frequencies(sampler({ seed: 7 }), logits, 20000);
    expect(maxAbsDiff(f, softmax(logits))).toBeLessThan(0.02);
  });

  it('applies temperature before sampling', () => {
    const f = frequencies(sampler({ temperature: 0.5, seed: 8 }), logits, 20000);
    expect(maxAbsDiff(f, softmax(logits.map((x) => x / 0.5)))).toBeLessThan(0.02);
  });

  it('top-k renormalizes over the k best', () => {
    const f = frequencies(sampler({ topK: 3, seed: 9 }), logits, 20000);
    const p = softmax([logits[1], logits[3], logits[5]]);
    expect(maxAbsDiff(f, [0, p[0], 0, p[1], 0, p[2]])).toBeLessThan(0.02);
  });

  it('top-p keeps the smallest set reaching p (HF rule) and renormalizes', () => {
    // probabilities 0.5, 0.3, 0.15, 0.05: with p = 0.75 the mass above token 2 is 0.8 ≥ p, so only two remain.
    const l = [0.5, 0.3, 0.15, 0.05].map(Math.log);
    const f = frequencies(sampler({ topP: 0.75, seed: 10 }), l, 20000);
    expect(maxAbsDiff(f, [0.625, 0.375, 0, 0])).toBeLessThan(0.02);
    const g = frequencies(sampler({ topP: 0.85, seed: 11 }), l, 20000);
    expect(maxAbsDiff(g, [0.5, 0.3, 0.15, 0].map((x) => x / 0.95))).toBeLessThan(0.02);
  });

  it('top-k then top-p, on a 150k vocabulary, only returns tokens of the brute-force nucleus', () => {
    const vocab = 150_000;
    const l = randomLogits(vocab, 21, 4);
    const order = Array.from(l.keys()).sort((a, b) => l[b] - l[a]);
    const nucleusOf = (ids: number[], topP: number) => {
      const p = softmax(ids.map((i) => l[i]));
      const keep = new Set<number>();
      let above = 0;
      for (let j = 0; j < ids.length && (j === 0 || above < topP); j++) {
        keep.add(ids[j]);
        above += p[j];
      }
      return keep;
    };
    const topKSet = new Set(order.slice(0, 40));
    const both = nucleusOf(order.slice(0, 40), 0.5);
    const onlyP = nucleusOf(order, 0.9);
    const sK = sampler({ topK: 40, seed: 1 });
    const sKP = sampler({ topK: 40, topP: 0.5, seed: 2 });
    const sP = sampler({ topP: 0.9, seed: 3 });
    const seen = new Set<number>();
    const t0 = performance.now();
    for (let i = 0; i < 30; i++) {
      expect(topKSet.has(sK.sample(l, []))).toBe(true);
      const x = sKP.sample(l, []);
      expect(both.has(x)).toBe(true);
      seen.add(x);
      expect(onlyP.has(sP.sample(l, []))).toBe(true);
    }
    expect(seen.size).toBeGreaterThan(1);
    // Generous bound: this is ~1-5 ms per call on a laptop; a full comparator sort per call would be far slower.
    expect((performance.now() - t0) / 90).toBeLessThan(100);
  });

  it('never samples masked (-Infinity) tokens', () => {
    const s = sampler({ seed: 3, temperature: 5 });
    const l = Float32Array.from([-Infinity, 0, -Infinity, 0.1]);
    for (let i = 0; i < 1000; i++) expect([1, 3]).toContain(s.sample(l, []));
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens, once each', () => {
    const l = [2, -1, 0.5, 0];
    const input = Float32Array.from(l);
    const f = frequencies(sampler({ repetitionPenalty: 2, seed: 12 }), l, 20000, [0, 1, 0, 1, 1, 999, -1]);
    expect(maxAbsDiff(f, softmax([1, -2, 0.5, 0]))).toBeLessThan(0.02);
    sampler({ repetitionPenalty: 2 }).sample(input, [0, 1]);
    expect(Array.from(input)).toEqual(l); // the caller's logits are untouched

    // Greedy with a penalty: the repeated token loses when penalized below the next one.
    expect(sampler({ temperature: 0, repetitionPenalty: 2 }).sample(Float32Array.from([2, 1.5]), [0])).toBe(1);
    expect(sampler({ temperature: 0, repetitionPenalty: 2 }).sample(Float32Array.from([-1, -1.5]), [0])).toBe(1);
    expect(sampler({ temperature: 0, repetitionPenalty: 2 }).sample(Float32Array.from([-1, -1.5]), [1])).toBe(0);
    // A penalty below 1 favours repeats.
    expect(sampler({ temperature: 0, repetitionPenalty: 0.5 }).sample(Float32Array.from([1.5, 1]), [1])).toBe(1);
  });
});
