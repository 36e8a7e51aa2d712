/**
 * The llama.cpp agreement check of GGUF files (issue bars): for each file, llama.cpp's greedy continuation and
 * teacher-forced top-1 against ours. Workloads, thresholds and scoring are here, shared by the benchmark
 * (bench/gguf-agreement.ts, Node/Dawn + Chromium + llama.cpp) and the test on the small files
 * (tests/gguf-agreement.test.ts).
 *   - F32 and Q8_0: greedy ids equal over 64 tokens.
 *   - Other types (4-, 5- and 6-bit): top-1 agreement ≥ 99% under teacher forcing over 512 tokens, and
 *     ≥ 90% greedy agreement over 128 tokens: the share of positions where the two continuations hold the same
 *     token, as `npm run eval` defines greedy agreement (the first divergence is reported next to it).
 * Teacher-forced text: held-out Dracula for byte-llama-12l (its domain: books); for stories260k, a TinyStories
 * model that is close to uniform on Victorian prose, a story sampled from its own f32 weights (seeded, T = 1),
 * so that top-1 is decided by the model and not by ties on text it cannot read.
 */
import path from 'node:path';
import type { GgufKind } from '../../scripts/gguf-models';
import { ReferenceModel } from '../../src/reference/forward';
import { loadReferenceModel } from '../../src/reference/load-node';
import { mulberry32 } from '../../src/reference/mulberry32';
import { sharedModelsDir, startHubServer } from '../../scripts/hub-server';
import { HubSource } from '../../src/model/source';
import { loadTokenizer } from '../../src/model/tokenizer';
import { firstTokens } from '../eval/text';

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
  /** Ours only: each teacher-forced position's top-1 logit minus the runner-up's. */
  margin?: number[];
}

/** Agreement of ours with llama.cpp on one file. */
export interface Agreement {
  greedyTokens: number;
  /** Length of the common prefix of the two greedy continuations (= the first divergence). */
  greedyPrefix: number;
  /** Share of positions with the same greedy token. */
  greedyAgreement: number;
  top1Tokens: number;
  top1Matches: number;
  top1Agreement: number;
  /** First teacher-forced position where the two differ (−1: none). */
  firstTop1Mismatch: number;
  /** Largest of our top-1 margins (logit units) at the positions where the two differ: near-ties when small. */
  maxMismatchMargin: number | null;
  /** Median of our top-1 margins over all positions, for scale. */
  medianMargin: number | null;
  pass: boolean;
  bar: string;
}

/** Score `ours` against `llama` under the bar of `kind`. */
export function score(kind: GgufKind, ours: EngineRun, llama: EngineRun): Agreement {
  const n = Math.min(ours.greedy.length, llama.greedy.length);
  let prefix = 0;
  while (prefix < n && ours.greedy[prefix] === llama.greedy[prefix]) prefix++;
  let same = 0;
  for (let i = 0; i < n; i++) if (ours.greedy[i] === llama.greedy[i]) same++;
  const m = Math.min(ours.top1.length, llama.top1.length);
  let matches = 0;
  let first = -1;
  let maxMismatchMargin: number | null = null;
  for (let i = 0; i < m; i++) {
    if (ours.top1[i] === llama.top1[i]) matches++;
    else {
      if (first < 0) first = i;
      if (ours.margin) maxMismatchMargin = Math.max(maxMismatchMargin ?? 0, ours.margin[i]);
    }
  }
  const sorted = ours.margin ? [...ours.margin].sort((a, b) => a - b) : [];
  const medianMargin = sorted.length ? sorted[sorted.length >> 1] : null;
  const greedyAgreement = n ? same / n : 0;
  const top1Agreement = m ? matches / m : 0;
  const exact = exactKind(kind);
  const pass = exact ? prefix === n && n >= GREEDY_EXACT_TOKENS : top1Agreement >= TOP1_MIN && greedyAgreement >= GREEDY_MIN && n >= GREEDY_TOKENS;
  const bar = exact ? `greedy equal over ${GREEDY_EXACT_TOKENS}` : `top-1 ≥ ${TOP1_MIN * 100}% over ${TOP1_TOKENS}, greedy ≥ ${GREEDY_MIN * 100}% over ${GREEDY_TOKENS}`;
  return { greedyTokens: n, greedyPrefix: prefix, greedyAgreement, top1Tokens: m, top1Matches: matches, top1Agreement, firstTop1Mismatch: first, maxMismatchMargin, medianMargin, pass, bar };
}

/** Greedy length for a kind. */
export function greedyTokens(kind: GgufKind): number {
  return exactKind(kind) ? GREEDY_EXACT_TOKENS : GREEDY_TOKENS;
}

/**
 * `n` ids (BOS first) sampled from a model's f32 weights (CPU reference, temperature 1, seeded) after `prompt`:
 * an in-domain text for teacher forcing.
 */
export async function sampledText(modelDir: string, prompt: number[], n: number, seed = 7): Promise<number[]> {
  const { config, tensors } = await loadReferenceModel(modelDir);
  const model = new ReferenceModel(config, tensors);
  const rand = mulberry32(seed);
  const ids = [...prompt];
  let logits: Float32Array = model.forward(prompt).slice(-config.vocabSize);
  while (ids.length < n) {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    const p = Array.from(logits, (v) => Math.exp(v - max));
    let r = rand() * p.reduce((a, b) => a + b, 0);
    let next = 0;
    while (next < p.length - 1 && (r -= p[next]) > 0) next++;
    ids.push(next);
    logits = model.forward([next]);
  }
  return ids;
}

/** The teacher-forcing ids of a model: a sampled story for stories260k, else `dracula` (already tokenized). */
export async function topOneIds(modelsDir: string, model: string, storyPrompt: number[], dracula: () => number[]): Promise<number[]> {
  return model === 'stories260k' ? sampledText(path.join(modelsDir, model), storyPrompt, TOP1_TOKENS) : dracula();
}

/** Prompt and teacher-forced ids of a model, tokenized with its own tokenizer.json (identical to the GGUF's, tests/gguf-tokenizer.test.ts). */
export async function workload(model: string, body: string): Promise<{ prompt: number[]; ids: number[] }> {
  const hub = await startHubServer({ repos: { [`local/${model}`]: path.join(sharedModelsDir(), model) } });
  try {
    const tok = await loadTokenizer(new HubSource(`local/${model}`, hub.baseUrl));
    const prompt = model === 'stories260k' ? tok.encodeText('Once upon a time') : firstTokens(tok, body, 48);
    return { prompt, ids: await topOneIds(sharedModelsDir(), model, prompt, () => firstTokens(tok, body, TOP1_TOKENS)) };
  } finally {
    await hub.close();
  }
}
