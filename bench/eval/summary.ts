/**
 * Turns the job outcomes of `npm run eval` into the report's tables: divergence rows (KL, ppl over all N and
 * the last quarter, top-1, bytes, passkey) per model, text, window and mode, pooled over the texts; the byte
 * table by component; Node vs Chromium vs CPU reference; passkey by depth; the copy test; greedy agreement.
 */
import { emptyScores, windowStats, type PositionScores, type WindowStats } from '../../src/engine/divergence';
import type { QualityResult } from '../../src/worker/api';
import type { EvalJob, JobOutcome, ModelJobs } from './jobs';
import { answeredKey } from './text';

/** Passkey of one mode at one context, beside full's (the ceiling). */
export interface RowPasskey {
  context: number;
  trials: number;
  /** null when the mode was not run because full retrieved nothing there. */
  correct: number | null;
  fullCorrect: number;
  /** false when full scores 0: the judge cannot retrieve, so passkey says nothing about the mode. */
  judged: boolean;
}

/** One row of summary.perplexity: a mode on one text (or pooled over the texts) in an N-token window. */
export interface QualityRow {
  model: string;
  /** A text name, or 'pooled' (every text's positions together). */
  text: string;
  n: number;
  mode: string;
  sweep: boolean;
  all: WindowStats;
  lastQuarter: WindowStats;
  /** Headline numbers: Δppl % over the last quarter, mean KL over all N and over the last quarter. */
  deltaPct: number;
  klMean: number;
  klMeanLastQuarter: number;
  top1: number;
  /** Allocated bytes of the mode's f16 layout reserved to N, and fp16 baseline / that. */
  kvBytesF16: number | null;
  ratioF16: number | null;
  maxContext: number | null;
  ratioF16Max: number | null;
  /** Bytes this run allocated (f32 full-precision parts) after the N-token window; largest N only. */
  kvBytesRun: number | null;
  passkey: RowPasskey | null;
  ms: number | null;
  /** Rows read under an evicting cache: its slot limit and policy (bytes are of the capped f16 layout). */
  evict?: { limitTokens: number; policy: string };
}

/** Where a mode's bytes go at N (f16 layout), by component. */
export interface ByteRow {
  model: string;
  mode: string;
  n: number;
  total: number;
  fp16: number;
  components: Record<string, number>;
}

export interface BrowserRow {
  model: string;
  n: number;
  mode: string;
  node: number | null;
  chromium: number | null;
  /** The CPU reference (src/reference) on the same ids. */
  reference: number | null;
  /** |node − chromium|, when both ran. */
  absDiff: number | null;
  nodeMs: number | null;
  chromiumMs: number | null;
}

export interface PasskeyRow {
  model: string;
  format: string;
  mode: string;
  context: number;
  trials: number;
  correct: number;
  accuracy: number;
  /** Correct / trials per needle depth. */
  byDepth: Record<string, { correct: number; trials: number }>;
  /** Trials whose answer text equals full's answer to the same prompt. */
  sameAsFull: number | null;
  /** The most frequent answer text. */
  typicalAnswer: string;
}

export interface GreedyRow {
  model: string;
  mode: string;
  promptTokens: number;
  tokens: number;
  agreement: number | null;
  firstDivergence: number | null;
  text: string;
}

/** The copy test of one mode: mean NLL of the span's first and second reading. */
export interface CopyRow {
  model: string;
  mode: string;
  sweep: boolean;
  first: number;
  second: number;
  /** first − second under this mode, and under full. */
  drop: number;
  fullDrop: number;
  /** drop / fullDrop; null when full's drop is under COPY_MIN_DROP (the judge does not copy). */
  kept: number | null;
}

export interface Summary {
  perplexity: QualityRow[];
  bytes: ByteRow[];
  browser: BrowserRow[];
  passkey: PasskeyRow[];
  greedy: GreedyRow[];
  copy: CopyRow[];
}

/** Smallest drop in NLL (nats/token) on the repeat under full that counts as copying. */
export const COPY_MIN_DROP = 0.1;

type Ppl = Extract<QualityResult, { kind: 'perplexity' }>;
type Greedy = Extract<QualityResult, { kind: 'greedy' }>;
type Bytes = Extract<QualityResult, { kind: 'bytes' }>;
type Div = Extract<QualityResult, { kind: 'divergence' }>;

/** Token agreement of `tokens` with `reference` and the first position where they differ. */
export function agreement(reference: number[], tokens: number[]): { agreement: number; firstDivergence: number | null } {
  let same = 0;
  let first: number | null = null;
  for (let i = 0; i < reference.length; i++) {
    if (reference[i] === tokens[i]) same++;
    else if (first === null) first = i;
  }
  return { agreement: same / reference.length, firstDivergence: first };
}

/** Positions [from, to) of several score records, concatenated. */
function concat(parts: Array<{ s: PositionScores; from: number; to: number }>): PositionScores {
  const out = emptyScores();
  for (const { s, from, to } of parts) for (const k of ['nll', 'nllRef', 'kl', 'top1'] as const) out[k].push(...s[k].slice(from, to));
  return out;
}

/** All-N and last-quarter statistics of windows of length n from one or more texts' scores. */
function windowOf(scores: PositionScores[], n: number): { all: WindowStats; lastQuarter: WindowStats } {
  const q = Math.floor((3 * n) / 4);
  const all = concat(scores.map((s) => ({ s, from: 0, to: n })));
  const last = concat(scores.map((s) => ({ s, from: q, to: n })));
  return { all: windowStats(all, 0, all.nll.length), lastQuarter: windowStats(last, 0, last.nll.length) };
}

/** The fp16 baseline of n positions, scaled from a run's own (fp16Bytes is proportional to tokens). */
function fp16Of(texts: Map<string, Div>, n: number): number {
  const r = [...texts.values()][0];
  return (r.kv.fp16Bytes / r.kv.tokens) * n;
}

const meanOf = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Build the summary tables from the plan and the outcomes of each back end. */
export function summarize(plan: ModelJobs[], nodeOutcomes: JobOutcome[], browserOutcomes: JobOutcome[], referenceOutcomes: JobOutcome[]): Summary {
  const jobs = new Map<string, EvalJob>(plan.flatMap((p) => p.jobs.map((j) => [j.id, j] as [string, EvalJob])));
  const node = new Map(nodeOutcomes.filter((o) => o.result).map((o) => [o.id, o.result as QualityResult]));
  const chrome = new Map(browserOutcomes.filter((o) => o.result).map((o) => [o.id, o.result as QualityResult]));
  const reference = new Map(referenceOutcomes.filter((o) => o.result).map((o) => [o.id, o.result as QualityResult]));
  const model = (id: string) => id.split('|')[0];
  const summary: Summary = { perplexity: [], bytes: [], browser: [], passkey: passkeyRows(jobs, node), greedy: [], copy: [] };
  const maxContext = new Map<string, number>();
  for (const j of jobs.values()) if (j.meta.what === 'bytes') maxContext.set(model(j.id), Math.max(maxContext.get(model(j.id)) ?? 0, j.meta.n));
  const bytesAt = (m: string, mode: string, n: number) => node.get(`${m}|bytes|${mode}|${n}|f16`) as Bytes | undefined;

  // Divergence rows: per text and pooled, per window.
  type Evict = NonNullable<Extract<EvalJob['meta'], { what: 'divergence' }>['evict']>;
  const groups = new Map<string, { m: string; mode: string; sweep: boolean; windows: number[]; evict?: Evict; texts: Map<string, Div> }>();
  for (const [id, job] of jobs) {
    if (job.meta.what !== 'divergence') continue;
    const r = node.get(id) as Div | undefined;
    if (!r) continue;
    const key = `${model(id)}|${job.meta.mode}`;
    const g = groups.get(key) ?? { m: model(id), mode: job.meta.mode, sweep: job.meta.sweep, windows: job.meta.evict ? [job.meta.n] : job.meta.windows, evict: job.meta.evict, texts: new Map() };
    g.texts.set(job.meta.text, r);
    groups.set(key, g);
  }
  for (const g of groups.values()) {
    const max = maxContext.get(g.m) ?? null;
    const nMax = Math.max(...g.windows);
    const entries: Array<[string, Div[]]> = [...[...g.texts].map(([t, r]) => [t, [r]] as [string, Div[]]), ...(g.texts.size > 1 ? [['pooled', [...g.texts.values()]] as [string, Div[]]] : [])];
    for (const n of g.windows) {
      // An evicting cache's bytes are its capped allocation (from the plan); it holds at most limitTokens slots at any N.
      const capped = g.evict ? { kv: { kvBytes: g.evict.kvBytesF16, fp16Bytes: fp16Of(g.texts, n), tokens: n, components: {} } } : undefined;
      const f16 = capped ?? bytesAt(g.m, g.mode, n);
      const f16Max = max === null || g.evict ? undefined : bytesAt(g.m, g.mode, max);
      for (const [text, results] of entries) {
        const { all, lastQuarter } = windowOf(results.map((r) => r.scores), n);
        summary.perplexity.push({
          model: g.m,
          text,
          n,
          mode: g.mode,
          sweep: g.sweep,
          all,
          lastQuarter,
          deltaPct: lastQuarter.deltaPct,
          klMean: all.klMean,
          klMeanLastQuarter: lastQuarter.klMean,
          top1: all.top1,
          kvBytesF16: f16?.kv.kvBytes ?? null,
          ratioF16: f16 ? f16.kv.fp16Bytes / f16.kv.kvBytes : null,
          maxContext: f16Max ? max : null,
          ratioF16Max: f16Max ? f16Max.kv.fp16Bytes / f16Max.kv.kvBytes : null,
          kvBytesRun: n === nMax && results.length === 1 ? results[0].kv.kvBytes : null,
          passkey: rowPasskey(summary.passkey, g.m, g.mode, n),
          ms: results.length === 1 ? results[0].ms : null,
          ...(g.evict ? { evict: { limitTokens: g.evict.limitTokens, policy: g.evict.policy } } : {}),
        });
      }
      if (f16 && !g.evict) summary.bytes.push({ model: g.m, mode: g.mode, n, total: f16.kv.kvBytes, fp16: f16.kv.fp16Bytes, components: f16.kv.components });
    }
  }

  // Perplexity on Node, Chromium and the CPU reference (the same ids).
  for (const [id, job] of jobs) {
    if (job.meta.what !== 'perplexity') continue;
    const r = node.get(id) as Ppl | undefined;
    const c = chrome.get(id) as Ppl | undefined;
    const ref = reference.get(id) as Ppl | undefined;
    if (!r && !c && !ref) continue;
    summary.browser.push({ model: model(id), n: job.meta.n, mode: job.meta.mode, node: r?.ppl ?? null, chromium: c?.ppl ?? null, reference: ref?.ppl ?? null, absDiff: r && c ? Math.abs(r.ppl - c.ppl) : null, nodeMs: r?.ms ?? null, chromiumMs: c?.ms ?? null });
  }

  // Greedy agreement with full.
  for (const [id, job] of jobs) {
    if (job.meta.what !== 'greedy') continue;
    const r = node.get(id) as Greedy | undefined;
    if (!r) continue;
    const ref = node.get(`${model(id)}|greedy|full`) as Greedy | undefined;
    const a = ref ? agreement(ref.tokenIds, r.tokenIds) : null;
    summary.greedy.push({ model: model(id), mode: job.meta.mode, promptTokens: job.meta.promptTokens, tokens: r.tokenIds.length, agreement: a?.agreement ?? null, firstDivergence: a?.firstDivergence ?? null, text: r.text });
  }

  // The copy test: how much of full's drop on the repeated span each mode keeps.
  for (const [id, job] of jobs) {
    if (job.meta.what !== 'copytest') continue;
    const r = node.get(id) as Div | undefined;
    if (!r) continue;
    const [[a0, a1], [b0, b1]] = job.meta.spans;
    const first = meanOf(r.scores.nll.slice(a0, a1));
    const second = meanOf(r.scores.nll.slice(b0, b1));
    const fullDrop = meanOf(r.scores.nllRef.slice(a0, a1)) - meanOf(r.scores.nllRef.slice(b0, b1));
    summary.copy.push({ model: model(id), mode: job.meta.mode, sweep: job.meta.sweep, first, second, drop: first - second, fullDrop, kept: fullDrop >= COPY_MIN_DROP ? (first - second) / fullDrop : null });
  }
  return summary;
}

/** A row's passkey at context n (classic format), beside full's. */
function rowPasskey(rows: PasskeyRow[], m: string, mode: string, n: number): RowPasskey | null {
  const full = rows.find((p) => p.model === m && p.format === 'classic' && p.mode === 'full' && p.context === n);
  if (!full) return null;
  const own = rows.find((p) => p.model === m && p.format === 'classic' && p.mode === mode && p.context === n);
  return { context: n, trials: full.trials, correct: own?.correct ?? null, fullCorrect: full.correct, judged: full.correct > 0 };
}

/** Passkey accuracy per format, mode and context, with a breakdown by depth. */
function passkeyRows(jobs: Map<string, EvalJob>, node: Map<string, QualityResult>): PasskeyRow[] {
  const model = (id: string) => id.split('|')[0];
  const groups = new Map<string, PasskeyRow & { answers: Map<string, number> }>();
  for (const [id, job] of jobs) {
    if (job.meta.what !== 'passkey') continue;
    const r = node.get(id) as Greedy | undefined;
    if (!r) continue;
    const { format, mode, context, trial, key, depth } = job.meta;
    const gid = `${model(id)}|${format}|${mode}|${context}`;
    let g = groups.get(gid);
    if (!g) {
      g = { model: model(id), format, mode, context, trials: 0, correct: 0, accuracy: 0, byDepth: {}, sameAsFull: mode === 'full' ? null : 0, typicalAnswer: '', answers: new Map() };
      groups.set(gid, g);
    }
    const ok = answeredKey(r.text) === key;
    const d = (g.byDepth[depth.toFixed(2)] ??= { correct: 0, trials: 0 });
    d.trials++;
    g.trials++;
    if (ok) {
      g.correct++;
      d.correct++;
    }
    g.answers.set(r.text, (g.answers.get(r.text) ?? 0) + 1);
    const ref = node.get(`${model(id)}|passkey|${format}|full|${context}|${trial}`) as Greedy | undefined;
    if (g.sameAsFull !== null && ref && ref.text === r.text) g.sameAsFull++;
  }
  return [...groups.values()].map(({ answers, ...g }) => {
    const typical = [...answers.entries()].sort((a, b) => b[1] - a[1])[0];
    return { ...g, accuracy: g.correct / g.trials, typicalAnswer: typical ? `${JSON.stringify(typical[0])} ×${typical[1]}` : '' };
  });
}
