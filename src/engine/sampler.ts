/**
 * Token sampling on the CPU: repetition penalty, temperature, top-k, top-p, then a seeded draw, in the
 * order Hugging Face transformers applies them. Pure: no DOM, no GPU.
 */
import type { GenerateParams } from '../worker/api';

/** A seeded PRNG (xoshiro128**, state from splitmix32) returning floats in [0, 1). */
export function createRng(seed: number): () => number {
  let s = seed >>> 0;
  const splitmix32 = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix32();
  let b = splitmix32();
  let c = splitmix32();
  let d = splitmix32();
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is a fixed point
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The parameters the sampler itself uses. */
export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 1 = off. */
  repetitionPenalty: number;
  /** Seed of the PRNG; only its low 32 bits matter. */
  seed: number;
}

/** GenerateParams with every default filled in and every value checked. */
export interface NormalizedGenerateParams extends SamplingParams {
  maxNewTokens: number;
  stopAtEos: boolean;
  /** Stop strings, empty strings removed. */
  stop: string[];
}

/** Fill in defaults (greedy, 256 tokens, stop at EOS) and validate; throws RangeError on a bad value. */
export function normalizeSamplingParams(p: GenerateParams = {}): NormalizedGenerateParams {
  const temperature = p.temperature ?? 0;
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new RangeError(`temperature must be a finite number ≥ 0 (0 = greedy), got ${temperature}.`);
  }
  const topK = p.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) {
    throw new RangeError(`topK must be an integer ≥ 0 (0 = off), got ${topK}.`);
  }
  const topP = p.topP ?? 1;
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) {
    throw new RangeError(`topP must be in (0, 1] (1 = off), got ${topP}.`);
  }
  const repetitionPenalty = p.repetitionPenalty ?? 1;
  if (!Number.isFinite(repetitionPenalty) || repetitionPenalty <= 0) {
    throw new RangeError(`repetitionPenalty must be a finite number > 0 (1 = off), got ${repetitionPenalty}.`);
  }
  const seed = p.seed ?? Math.floor(Math.random() * 4294967296);
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`seed must be an integer, got ${seed}.`);
  }
  const maxNewTokens = p.maxNewTokens ?? 256;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new RangeError(`maxNewTokens must be an integer ≥ 1, got ${maxNewTokens}.`);
  }
  const stop = p.stop ?? [];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string')) {
    throw new RangeError('stop must be an array of strings.');
  }
  return {
    temperature,
    topK,
    topP,
    repetitionPenalty,
    seed,
    maxNewTokens,
    stopAtEos: p.stopAtEos ?? true,
    stop: stop.filter((s) => s.length > 0),
  };
}

/** Picks the next token from a logits vector. One instance per generation: it owns the PRNG state. */
export class Sampler {
  readonly params: SamplingParams;
  private readonly rng: () => number;
  // Scratch reused across calls, sized to the vocabulary on first use.
  private scores = new Float32Array(0);
  private cand = new Int32Array(0);
  private weights = new Float64Array(0);

  constructor(params: SamplingParams) {
    this.params = { ...params };
    this.rng = createRng(params.seed);
  }

  /** True when the next token can be picked by a GPU argmax with no logits readback. */
  get isGreedy(): boolean {
    return this.params.temperature === 0 && this.params.repetitionPenalty === 1;
  }

  /** Pick one token id. `recentTokens` are the ids the repetition penalty applies to. Does not modify `logits`. */
  sample(logits: Float32Array, recentTokens: readonly number[]): number {
    const vocab = logits.length;
    if (vocab === 0) throw new RangeError('Cannot sample from an empty logits vector.');
    const { temperature, topK, topP, repetitionPenalty } = this.params;
    const scores = repetitionPenalty === 1 ? logits : this.penalize(logits, recentTokens);
    if (temperature === 0) return argmax(scores);

    this.ensureScratch(vocab);
    const cand = this.cand;
    let n: number;
    if (topK > 0 && topK < vocab) {
      n = topKCandidates(scores, topK, cand);
    } else {
      for (let i = 0; i < vocab; i++) cand[i] = i;
      n = vocab;
    }

    // Unnormalized softmax weights of the candidates at this temperature.
    const w = this.weights;
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, scores[cand[j]]);
    if (max === -Infinity || Number.isNaN(max)) return argmax(scores);
    const invT = 1 / temperature;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp((scores[cand[j]] - max) * invT);
      w[j] = Number.isNaN(e) ? 0 : e;
      total += w[j];
    }
    if (topP < 1) {
      n = nucleus(cand, w, n, total, topP);
      total = 0;
      for (let j = 0; j < n; j++) total += w[j];
    }
    return draw(cand, w, n, total, this.rng());
  }

  private penalize(logits: Float32Array, recent: readonly number[]): Float32Array {
    if (this.scores.length !== logits.length) this.scores = new Float32Array(logits.length);
    const s = this.scores;
    s.set(logits);
    const p = this.params.repetitionPenalty;
    const seen = new Set<number>();
    for (const id of recent) {
      if (id < 0 || id >= s.length || seen.has(id)) continue;
      seen.add(id);
      const x = logits[id];
      s[id] = x > 0 ? x / p : x * p; // CTRL-style, as in HF's RepetitionPenaltyLogitsProcessor
    }
    return s;
  }

  private ensureScratch(vocab: number): void {
    if (this.cand.length < vocab) {
      this.cand = new Int32Array(vocab);
      this.weights = new Float64Array(vocab);
    }
  }
}

/** Whether every value is finite (no NaN, no ±Inf). */
export function allFinite(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

/** Index of the largest value; the lowest index wins ties, NaN never wins. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] > bestValue) {
      bestValue = x[i];
      best = i;
    }
  }
  return best;
}

/**
 * Write into `out` the indices whose score is ≥ the k-th largest (HF keeps ties at the boundary) and return
 * their count. A size-k min-heap finds the k-th largest in O(V log k) without sorting the vocabulary.
 */
function topKCandidates(scores: Float32Array, k: number, out: Int32Array): number {
  const heap = new Float64Array(k);
  let size = 0;
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i];
    if (Number.isNaN(v)) continue;
    if (size < k) {
      let c = size++;
      heap[c] = v;
      while (c > 0) {
        const parent = (c - 1) >> 1;
        if (heap[parent] <= heap[c]) break;
        const t = heap[parent];
        heap[parent] = heap[c];
        heap[c] = t;
        c = parent;
      }
    } else if (v > heap[0]) {
      heap[0] = v;
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        const r = l + 1;
        let m = c;
        if (l < k && heap[l] < heap[m]) m = l;
        if (r < k && heap[r] < heap[m]) m = r;
        if (m === c) break;
        const t = heap[m];
        heap[m] = heap[c];
        heap[c] = t;
        c = m;
      }
    }
  }
  const threshold = size < k ? -Infinity : heap[0];
  let n = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] >= threshold) out[n++] = i;
  return n;
}

/**
 * Keep the smallest set of most likely candidates whose mass reaches `topP` (always at least one): a candidate
 * stays when the mass ranked strictly above it is < topP, which is HF's TopPLogitsWarper rule. Compacts `cand`
 * and `w` in place (index order kept) and returns the new count.
 */
function nucleus(cand: Int32Array, w: Float64Array, n: number, total: number, topP: number): number {
  // Only candidates above a threshold can be in the nucleus, provided those above it already hold ≥ topP of the
  // mass. Try a cheap threshold first, then one that guarantees it: everything below (1-topP)/n sums to < 1-topP.
  let maxW = 0;
  for (let j = 0; j < n; j++) maxW = Math.max(maxW, w[j]);
  const target = topP * total;
  let threshold = 0;
  for (const t of [maxW * 1e-3, (total * (1 - topP)) / n]) {
    let mass = 0;
    for (let j = 0; j < n; j++) if (w[j] >= t) mass += w[j];
    if (mass >= target) {
      threshold = t;
      break;
    }
  }
  let m = 0;
  for (let j = 0; j < n; j++) if (w[j] >= threshold) m++;
  const sorted = new Float64Array(m);
  m = 0;
  for (let j = 0; j < n; j++) if (w[j] >= threshold) sorted[m++] = w[j];
  sorted.sort(); // native numeric sort, ascending: far faster than sorting indices with a comparator

  let kept = 0;
  let above = 0;
  let cutoff = sorted[m - 1];
  for (let i = m - 1; i >= 0 && (kept === 0 || above < target); i--) {
    above += sorted[i];
    cutoff = sorted[i];
    kept++;
  }
  let ties = kept;
  for (let i = m - 1; i >= 0 && sorted[i] > cutoff; i--) ties--;
  let out = 0;
  for (let j = 0; j < n; j++) {
    if (w[j] > cutoff || (w[j] === cutoff && ties-- > 0)) {
      cand[out] = cand[j];
      w[out] = w[j];
      out++;
    }
  }
  return out;
}

/** Inverse-CDF draw over the first `n` candidates with weights `w` summing to `total`. */
function draw(cand: Int32Array, w: Float64Array, n: number, total: number, u: number): number {
  let r = u * total;
  for (let j = 0; j < n; j++) {
    r -= w[j];
    if (r < 0) return cand[j];
  }
  // Rounding left a sliver: return the last candidate with nonzero weight.
  for (let j = n - 1; j >= 0; j--) if (w[j] > 0) return cand[j];
  return cand[0];
}
