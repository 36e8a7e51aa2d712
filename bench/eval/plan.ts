/**
 * What `npm run eval` measures, as a job list (bench/eval/jobs.ts). Per model and mode:
 *   - divergence against full on each held-out text (and, on the main judge, under evicting caches at equal
 *     bytes: bench/eval/eviction.ts) (one N-token window from the text's start; smaller
 *     windows are its prefixes, since every position sees only its past): NLL, KL, top-1 per position;
 *   - a copy test: a span read twice inside one window, scored the same way;
 *   - allocated bytes (f16 layout) at each window and at the largest context;
 *   - greedy agreement with full;
 *   - the perplexity subset that also runs in Chromium and on the CPU reference;
 *   - passkey retrieval at fixed depths: full first (phase 1); the other modes only where full retrieves.
 * Tokenization happens here, once, so both back ends get the same ids.
 */
import type { ChatTokenizer } from '../../src/model/tokenizer';
import type { KvModeSpec } from '../../src/worker/api';
import type { EvalJob, ModelJobs } from './jobs';
import { evictionJobs } from './eviction';
import { FRONTIER, type EvalMode } from './modes';
import type { KvShape } from '../../src/kv/types';
import { draculaProse, firstTokens, passkeyFormats, passkeyTrials } from './text';
import { mulberry32 } from '../../src/reference/mulberry32';

/** Per-model settings of the protocol. */
export interface ModelPlan {
  model: string;
  /** Divergence window lengths N; the largest is run, the others are its prefixes. */
  windows: number[];
  /** Held-out texts (names of evalTexts()). */
  texts: string[];
  /** The N of the perplexity subset run on Node, Chromium and the CPU reference; null for none. */
  browserN: number | null;
  /** Labels of the modes in that subset (all when absent): Chromium on SwiftShader takes minutes per run of the byte model. */
  browserModes?: string[];
  /** Largest context, for the bytes-at-max-context column. */
  maxContext: number;
  greedyPromptTokens: number;
  greedyNewTokens: number;
  /** Passkey context lengths (prompt + answer); empty for none. */
  passkeyContexts: number[];
  passkeyTrials: number;
  passkeyAnswerTokens: number;
  /** Main judge: the frontier sweep, the copy test and the passkey format probe. */
  extras: boolean;
}

export const BYTE_MODEL = 'byte-llama-12l';
export const STORIES_MODEL = 'stories260k';
/** Seed of every random draw (passkey keys, copy spans). */
export const SEED = 20240607;
/** Passkey needle depths, cycled over the trials, so each depth gets trials / 5 of them. */
export const PASSKEY_DEPTHS = [0.1, 0.3, 0.5, 0.7, 0.9];
/** Trials per format in the passkey format probe (full mode only). */
const PROBE_TRIALS = 5;

/** The protocol: `quick` = stories260k only with few passkey trials. */
export function modelPlans(quick: boolean, passkeyTrialCount: number): ModelPlan[] {
  const stories: ModelPlan = {
    model: STORIES_MODEL,
    windows: [448],
    texts: ['dracula', 'lincoln'],
    browserN: 448,
    maxContext: 512,
    greedyPromptTokens: 256,
    greedyNewTokens: 128,
    passkeyContexts: quick ? [448] : [],
    passkeyTrials: quick ? 5 : 0,
    passkeyAnswerTokens: 10,
    extras: false,
  };
  if (quick) return [stories];
  const byte: ModelPlan = {
    model: BYTE_MODEL,
    windows: [512, 1024],
    texts: ['dracula', 'lincoln'],
    browserN: 512,
    browserModes: ['full', 'int8', 'kivi-2', 'kivi-2+rot', 'merge+kivi-2', 'zip+rot'],
    maxContext: 2048,
    greedyPromptTokens: 384,
    greedyNewTokens: 128,
    passkeyContexts: [512, 1024],
    passkeyTrials: passkeyTrialCount,
    passkeyAnswerTokens: 8,
    extras: true,
  };
  return [stories, byte];
}

/** Jobs of one model for `modes` (phase 1: everything but the non-full passkey trials). Ids are unique across models. */
export function modelJobs(plan: ModelPlan, tok: ChatTokenizer, texts: Record<string, string>, modes: EvalMode[], withSweep = true, shape?: KvShape): ModelJobs {
  const m = plan.model;
  const jobs: EvalJob[] = [];
  const N = Math.max(...plan.windows);
  const sweep = plan.extras && withSweep ? FRONTIER : [];
  const bytesJobs = (label: string, spec: KvModeSpec, n: number) => {
    jobs.push({ id: `${m}|bytes|${label}|${n}|f16`, meta: { what: 'bytes', mode: label, n, kvDtype: 'f16' }, task: { kind: 'bytes', kvMode: spec, tokens: n, kvDtype: 'f16' } });
  };
  const windowIds = Object.fromEntries(plan.texts.map((t) => [t, firstTokens(tok, texts[t], N + 1)]));
  // Text-major, so the reference (full) logits of a window are computed once and reused for every mode.
  const all = [...modes.map((x) => ({ ...x, sweep: false })), ...sweep.map((x) => ({ ...x, sweep: true }))];
  for (const text of plan.texts) {
    for (const { label, spec, sweep: inSweep } of all) {
      jobs.push({ id: `${m}|div|${text}|${label}`, meta: { what: 'divergence', mode: label, text, n: N, windows: plan.windows, sweep: inSweep }, task: { kind: 'divergence', kvMode: spec, ids: windowIds[text] } });
    }
  }
  for (const { label, spec } of all) for (const n of new Set([...plan.windows, plan.maxContext])) bytesJobs(label, spec, n);
  if (plan.extras && withSweep && shape) jobs.push(...evictionJobs(m, shape, N, plan.windows, windowIds));
  if (plan.browserN !== null) {
    const ids = windowIds[plan.texts[0]].slice(0, plan.browserN + 1);
    for (const { label, spec } of modes.filter((x) => !plan.browserModes || plan.browserModes.includes(x.label))) {
      jobs.push({ id: `${m}|ppl|${label}|${plan.browserN}`, meta: { what: 'perplexity', mode: label, n: plan.browserN }, task: { kind: 'perplexity', kvMode: spec, ids }, browser: true });
    }
  }

  const prompt = firstTokens(tok, draculaProse(texts.dracula), plan.greedyPromptTokens);
  for (const { label, spec } of modes) {
    jobs.push({ id: `${m}|greedy|${label}`, meta: { what: 'greedy', mode: label, promptTokens: prompt.length }, task: { kind: 'greedy', kvMode: spec, promptIds: prompt, newTokens: plan.greedyNewTokens } });
  }

  if (plan.extras) {
    const copy = copyTest(tok, texts.dracula, N);
    for (const { label, spec } of modes) {
      jobs.push({ id: `${m}|copytest|${label}`, meta: { what: 'copytest', mode: label, spans: copy.spans, sweep: false }, task: { kind: 'divergence', kvMode: spec, ids: copy.ids } });
    }
    const full = modes.filter((x) => x.label === 'full');
    const formats = passkeyFormats(texts.dracula);
    for (let f = 1; f < formats.length; f++) jobs.push(...passkeyJobs(plan, tok, texts.dracula, f, plan.passkeyContexts[0], PROBE_TRIALS, full, SEED + 7 * f));
  }
  // Passkey trials last: they are most of the run time. Phase 1 runs full's only.
  const full = modes.filter((x) => x.label === 'full');
  for (const context of plan.passkeyContexts) jobs.push(...passkeyJobs(plan, tok, texts.dracula, 0, context, plan.passkeyTrials, full, SEED + context));
  return { model: m, jobs };
}

/** Phase 2: the passkey trials of the non-full modes at the contexts where full retrieved at least one key. */
export function passkeyPhase2(plan: ModelPlan, tok: ChatTokenizer, dracula: string, modes: EvalMode[], contexts: number[]): ModelJobs {
  const others = modes.filter((x) => x.label !== 'full');
  return { model: plan.model, jobs: contexts.flatMap((context) => passkeyJobs(plan, tok, dracula, 0, context, plan.passkeyTrials, others, SEED + context)) };
}

/** Passkey jobs of format `formatIndex` at one context: the same trials (keys, depths) for every mode. */
function passkeyJobs(plan: ModelPlan, tok: ChatTokenizer, dracula: string, formatIndex: number, context: number, count: number, jobModes: EvalMode[], seed: number): EvalJob[] {
  const format = passkeyFormats(dracula)[formatIndex];
  const trials = passkeyTrials(tok, format, mulberry32(seed), count, context, plan.passkeyAnswerTokens, PASSKEY_DEPTHS);
  return jobModes.flatMap(({ label, spec }) =>
    trials.map((t, trial) => ({
      id: `${plan.model}|passkey|${format.name}|${label}|${context}|${trial}`,
      meta: { what: 'passkey' as const, format: format.name, mode: label, context, trial, key: t.key, depth: t.depth, needleToken: t.needleToken, promptTokens: t.promptIds.length },
      task: { kind: 'greedy' as const, kvMode: spec, promptIds: t.promptIds, newTokens: plan.passkeyAnswerTokens },
    })),
  );
}

/**
 * The copy test: one window of `n` tokens in which a 150-character span (random lowercase words, so nothing
 * in the prose predicts it) appears after 64 tokens of prose and again at the end of the window, with
 * Dracula prose between. A model that copies from its context predicts the second reading far better than
 * the first; spans are [start, end) token positions whose predictions score the span's tokens.
 */
export function copyTest(tok: ChatTokenizer, dracula: string, n: number): { ids: number[]; spans: [[number, number], [number, number]] } {
  const rng = mulberry32(SEED + 1);
  const span = Array.from({ length: 150 }, () => 'abcdefghijklmnopqrstuvwxyz     '[Math.floor(rng() * 31)]).join('');
  const spanIds = tok.encodeText(span);
  const prose = draculaProse(dracula);
  const head = firstTokens(tok, prose, 64);
  const gap = n + 1 - head.length - 2 * spanIds.length;
  if (gap < 64) throw new Error(`the copy test needs a window of at least ${head.length + 2 * spanIds.length + 64} tokens`);
  const middle = tok.encodeText(prose.slice(20000, 20000 + 8 * gap)).slice(0, gap);
  const ids = [...head, ...spanIds, ...middle, ...spanIds];
  const first = head.length;
  const second = head.length + spanIds.length + middle.length;
  // Position i predicts ids[i + 1]: the span's tokens at [s, s + len) are scored at [s − 1, s + len − 1).
  return { ids, spans: [[first - 1, first - 1 + spanIds.length], [second - 1, second - 1 + spanIds.length]] };
}
