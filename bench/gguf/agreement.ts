/**
 * The llama.cpp agreement check of GGUF files (issue bars): for each file, llama.cpp's greedy continuation and
 * teacher-forced top-1 against ours. Workloads, thresholds and scoring are here, shared by the benchmark
 * (bench/gguf-agreement.ts, Node/Dawn + Chromium + llama.cpp) and the test on the small files
 * (tests/gguf-agreement.test.ts).
 *   - F32 and Q8_0: greedy ids equal over 64 tokens.
 *   - Other types (4-, 5- and 6-bit): top-1 agreement ≥ 99% under teacher forcing over 512 tokens, and
 *     ≥ 90% greedy agreement over 128 tokens (the common prefix of the two continuations, over 128).
 */
import type { GgufKind } from '../../scripts/gguf-models';

/** Greedy tokens and teacher-forced positions per file. */
export const GREEDY_EXACT_TOKENS = 64;
export const GREEDY_TOKENS = 128;
export const TOP1_TOKENS = 512;
export const TOP1_MIN = 0.99;
export const GREEDY_MIN = 0.9;

/** Whether a kind is held to exact greedy equality. */
export function exactKind(kind: GgufKind): boolean {
  return kind === 'F32' || kind === 'F16' || kind === 'Q8_0';
}

/** What one engine produced on a file. */
export interface EngineRun {
  greedy: number[];
  top1: number[];
}

/** Agreement of ours with llama.cpp on one file. */
export interface Agreement {
  greedyTokens: number;
  /** Length of the common prefix of the two greedy continuations. */
  greedyPrefix: number;
  greedyAgreement: number;
  top1Tokens: number;
  top1Matches: number;
  top1Agreement: number;
  /** First teacher-forced position where the two differ (−1: none). */
  firstTop1Mismatch: number;
  pass: boolean;
  bar: string;
}

/** Score `ours` against `llama` under the bar of `kind`. */
export function score(kind: GgufKind, ours: EngineRun, llama: EngineRun): Agreement {
  const n = Math.min(ours.greedy.length, llama.greedy.length);
  let prefix = 0;
  while (prefix < n && ours.greedy[prefix] === llama.greedy[prefix]) prefix++;
  const m = Math.min(ours.top1.length, llama.top1.length);
  let matches = 0;
  let first = -1;
  for (let i = 0; i < m; i++) {
    if (ours.top1[i] === llama.top1[i]) matches++;
    else if (first < 0) first = i;
  }
  const greedyAgreement = n ? prefix / n : 0;
  const top1Agreement = m ? matches / m : 0;
  const exact = exactKind(kind);
  const pass = exact ? prefix === n && n >= GREEDY_EXACT_TOKENS : top1Agreement >= TOP1_MIN && greedyAgreement >= GREEDY_MIN && n >= GREEDY_TOKENS;
  const bar = exact ? `greedy equal over ${GREEDY_EXACT_TOKENS}` : `top-1 ≥ ${TOP1_MIN * 100}% over ${TOP1_TOKENS}, greedy ≥ ${GREEDY_MIN * 100}% over ${GREEDY_TOKENS}`;
  return { greedyTokens: n, greedyPrefix: prefix, greedyAgreement, top1Tokens: m, top1Matches: matches, top1Agreement, firstTop1Mismatch: first, pass, bar };
}

/** Greedy length for a kind. */
export function greedyTokens(kind: GgufKind): number {
  return exactKind(kind) ? GREEDY_EXACT_TOKENS : GREEDY_TOKENS;
}
