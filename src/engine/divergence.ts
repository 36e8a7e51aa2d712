/**
 * Position-by-position comparison of two models' (or two KV modes') next-token distributions, the metrics
 * of docs/kv-compression.md "Measuring quality": NLL of the true next token, KL(reference ‖ candidate) and
 * teacher-forced top-1 agreement, then their statistics over a window of positions (all N, or the last
 * quarter, whose past is mostly compressed). Pure f64 math on f32 logits; shared by the engine's
 * `divergence` task and the llama.cpp peer benchmark.
 */

/** log softmax of logits[offset .. offset + vocab), in f64. */
export function logSoftmaxRow(logits: ArrayLike<number>, offset: number, vocab: number): Float64Array {
  let max = -Infinity;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(logits[offset + j] - max);
  const lse = Math.log(sum) + max;
  const out = new Float64Array(vocab);
  for (let j = 0; j < vocab; j++) out[j] = logits[offset + j] - lse;
  return out;
}

/** KL(p ‖ q) = Σ p (log p − log q) of two log-probability rows; ≥ 0 up to rounding (clamped at 0). */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let j = 0; j < logP.length; j++) {
    const p = Math.exp(logP[j]);
    if (p > 0) kl += p * (logP[j] - logQ[j]);
  }
  return Math.max(0, kl);
}

/** Index of the largest entry (the first on ties, like the argmax kernel). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

/** Per-position scores of a candidate against a reference; index i scores the prediction after ids[0..i]. */
export interface PositionScores {
  /** −log q(ids[i + 1]) under the candidate. */
  nll: number[];
  /** −log p(ids[i + 1]) under the reference. */
  nllRef: number[];
  /** KL(p_ref ‖ q) of the whole next-token distribution. */
  kl: number[];
  /** 1 when the candidate's argmax equals the reference's, else 0. */
  top1: number[];
}

/** Append one position's scores: reference and candidate log-prob rows and the true next token. */
export function scorePosition(into: PositionScores, logRef: Float64Array, logQ: Float64Array, target: number): void {
  into.nll.push(-logQ[target]);
  into.nllRef.push(-logRef[target]);
  into.kl.push(klDivergence(logRef, logQ));
  into.top1.push(argmax(logRef) === argmax(logQ) ? 1 : 0);
}

export function emptyScores(): PositionScores {
  return { nll: [], nllRef: [], kl: [], top1: [] };
}

/** Statistics of positions [from, to) of a scores record. */
export interface WindowStats {
  from: number;
  to: number;
  ppl: number;
  pplRef: number;
  /** 100 × (ppl / pplRef − 1). */
  deltaPct: number;
  klMean: number;
  /** 99th percentile of per-position KL (nearest rank). */
  klP99: number;
  /** Share of positions whose argmax equals the reference's. */
  top1: number;
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Nearest-rank percentile q ∈ (0, 1] of xs. */
export function percentile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function windowStats(s: PositionScores, from: number, to: number): WindowStats {
  if (!(from >= 0 && to <= s.nll.length && to > from)) throw new RangeError(`window [${from}, ${to}) is outside the ${s.nll.length} scored positions`);
  const nll = mean(s.nll.slice(from, to));
  const nllRef = mean(s.nllRef.slice(from, to));
  const kl = s.kl.slice(from, to);
  return {
    from,
    to,
    ppl: Math.exp(nll),
    pplRef: Math.exp(nllRef),
    deltaPct: 100 * (Math.exp(nll - nllRef) - 1),
    klMean: mean(kl),
    klP99: percentile(kl, 0.99),
    top1: mean(s.top1.slice(from, to)),
  };
}

/** The window of all n scored positions and that of its last quarter [3n/4, n). */
export function allAndLastQuarter(s: PositionScores, n: number): { all: WindowStats; lastQuarter: WindowStats } {
  return { all: windowStats(s, 0, n), lastQuarter: windowStats(s, Math.floor((3 * n) / 4), n) };
}
