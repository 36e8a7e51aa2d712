/**
 * What `npm run eval` measures, as a job list (bench/eval/jobs.ts): per model and mode, perplexity at each
 * N with its bytes, greedy agreement, passkey trials, plus (full run only) the merge sweep, the passkey
 * format probe and a copy diagnostic. Tokenization happens here, once, so both back ends get the same ids.
 */
import type { ChatTokenizer } from '../../src/model/tokenizer';
import type { KvModeSpec } from '../../src/worker/api';
import type { EvalJob, ModelJobs } from './jobs';
import { MERGE_SWEEP, type EvalMode } from './modes';
import { draculaProse, encodeWithBos, firstTokens, passkeyFormats, passkeyTrials } from './text';
import { mulberry32 } from '../../src/reference/mulberry32';

/** Per-model settings of the protocol. */
export interface ModelPlan {
  model: string;
  /** Perplexity lengths N. */
  perplexityN: number[];
  /** The N that also runs in Chromium. */
  browserN: number | null;
  /** Largest context, for the bytes-at-max-context column. */
  maxContext: number;
  greedyPromptTokens: number;
  greedyNewTokens: number;
  /** Passkey context lengths (prompt + answer); empty for none. */
  passkeyContexts: number[];
  passkeyTrials: number;
  passkeyAnswerTokens: number;
  /** Merge sweep, format probe and copy diagnostic (byte model, full run). */
  extras: boolean;
}

export const BYTE_MODEL = 'byte-llama-12l';
export const STORIES_MODEL = 'stories260k';
/** Seed of every random draw (passkey keys and depths, copy strings). */
export const SEED = 20240607;
/** Trials per format in the passkey format probe (full mode only). */
const PROBE_TRIALS = 5;

/** The protocol: `quick` = stories260k only with few passkey trials. */
export function modelPlans(quick: boolean, passkeyTrialCount: number): ModelPlan[] {
  const stories: ModelPlan = {
    model: STORIES_MODEL,
    perplexityN: [448],
    browserN: 448,
    maxContext: 512,
    greedyPromptTokens: 256,
    greedyNewTokens: 128,
    passkeyContexts: quick ? [448] : [],
    passkeyTrials: quick ? 4 : 0,
    passkeyAnswerTokens: 10,
    extras: false,
  };
  if (quick) return [stories];
  const byte: ModelPlan = {
    model: BYTE_MODEL,
    perplexityN: [512, 1024],
    browserN: 512,
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

/** Jobs of one model for `modes`. Ids are unique across models. */
export function modelJobs(plan: ModelPlan, tok: ChatTokenizer, body: string, modes: EvalMode[]): ModelJobs {
  const m = plan.model;
  const jobs: EvalJob[] = [];
  const bytesJobs = (label: string, spec: KvModeSpec, n: number, sweep?: boolean) => {
    jobs.push({ id: `${m}|bytes|${label}|${n}|f16`, meta: { what: 'bytes', mode: label, n, kvDtype: 'f16', sweep }, task: { kind: 'bytes', kvMode: spec, tokens: n, kvDtype: 'f16' } });
  };
  const ids = firstTokens(tok, body, Math.max(...plan.perplexityN) + 1);
  for (const n of plan.perplexityN) {
    for (const { label, spec } of modes) {
      jobs.push({ id: `${m}|ppl|${label}|${n}`, meta: { what: 'perplexity', mode: label, n }, task: { kind: 'perplexity', kvMode: spec, ids: ids.slice(0, n + 1) }, browser: n === plan.browserN });
      bytesJobs(label, spec, n);
    }
  }
  for (const { label, spec } of modes) bytesJobs(label, spec, plan.maxContext);

  const prompt = firstTokens(tok, draculaProse(body), plan.greedyPromptTokens);
  for (const { label, spec } of modes) {
    jobs.push({ id: `${m}|greedy|${label}`, meta: { what: 'greedy', mode: label, promptTokens: prompt.length }, task: { kind: 'greedy', kvMode: spec, promptIds: prompt, newTokens: plan.greedyNewTokens } });
  }

  const formats = passkeyFormats(body);
  const passkeyJobs = (formatIndex: number, context: number, count: number, jobModes: EvalMode[], seed: number) => {
    const format = formats[formatIndex];
    const trials = passkeyTrials(tok, format, mulberry32(seed), count, context, plan.passkeyAnswerTokens);
    for (const { label, spec } of jobModes) {
      trials.forEach((t, trial) => {
        jobs.push({
          id: `${m}|passkey|${format.name}|${label}|${context}|${trial}`,
          meta: { what: 'passkey', format: format.name, mode: label, context, trial, key: t.key, depth: t.depth, needleToken: t.needleToken, promptTokens: t.promptIds.length },
          task: { kind: 'greedy', kvMode: spec, promptIds: t.promptIds, newTokens: plan.passkeyAnswerTokens },
        });
      });
    }
  };

  if (plan.extras) {
    for (const { label, spec } of MERGE_SWEEP) {
      const n = plan.perplexityN[0];
      jobs.push({ id: `${m}|ppl|${label}|${n}`, meta: { what: 'perplexity', mode: label, n, sweep: true }, task: { kind: 'perplexity', kvMode: spec, ids: ids.slice(0, n + 1) } });
      bytesJobs(label, spec, n, true);
      bytesJobs(label, spec, plan.maxContext, true);
    }
    const full = modes.filter((x) => x.label === 'full');
    for (let f = 1; f < formats.length; f++) passkeyJobs(f, plan.passkeyContexts[0], PROBE_TRIALS, full, SEED + 7 * f);
    jobs.push(...copyDiagnostic(m, tok, body));
  }
  // Passkey trials last: they are most of the run time.
  for (const context of plan.passkeyContexts) passkeyJobs(0, context, plan.passkeyTrials, modes, SEED + context);
  return { model: m, jobs };
}

/**
 * In-context copying check (full cache): a 150-character string read three times in a row. A model that can
 * retrieve from its context predicts the second and third copies much better than the first.
 */
function copyDiagnostic(model: string, tok: ChatTokenizer, body: string): EvalJob[] {
  const rng = mulberry32(SEED);
  const pick = (alphabet: string) => Array.from({ length: 150 }, () => alphabet[Math.floor(rng() * alphabet.length)]).join('');
  const strings: Record<string, string> = {
    'random letters': pick('abcdefghijklmnopqrstuvwxyz     '),
    'random digits': pick('0123456789'),
    'Dracula prose': draculaProse(body).slice(0, 150),
  };
  const jobs: EvalJob[] = [];
  for (const [name, s] of Object.entries(strings)) {
    for (const copies of [1, 2, 3]) {
      const ids = encodeWithBos(tok, Array(copies).fill(s).join(''));
      jobs.push({ id: `${model}|copy|${name}|${copies}`, meta: { what: 'copy', name, copies }, task: { kind: 'perplexity', kvMode: { mode: 'full' }, ids } });
    }
  }
  return jobs;
}
