/**
 * Turns the job outcomes of `npm run eval` into the report's tables: perplexity with bytes, Node vs
 * Chromium, passkey accuracy, greedy agreement, the merge sweep and the copy diagnostic.
 */
import type { QualityResult } from '../../src/worker/api';
import type { EvalJob, JobOutcome, ModelJobs } from './jobs';
import { answeredKey } from './text';

export interface PerplexityRow {
  model: string;
  n: number;
  mode: string;
  sweep: boolean;
  ppl: number;
  /** 100 × (ppl / ppl_full − 1) at the same N and back end. */
  deltaPct: number | null;
  /** Allocated bytes after the run (f32 weights and f32 full-precision K/V, as measured). */
  kvBytes: number;
  fp16Bytes: number;
  ratio: number;
  /** Allocated bytes of the same layout with f16 full-precision parts, reserved to N. */
  kvBytesF16: number | null;
  ratioF16: number | null;
  /** fp16-baseline ratio of the f16 layout at the model's largest context. */
  maxContext: number | null;
  ratioF16Max: number | null;
  ms: number;
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

export interface CopyRow {
  name: string;
  /** Mean NLL per token of the first, second and third copy. */
  nll: [number, number, number];
}

export interface Summary {
  perplexity: PerplexityRow[];
  browser: BrowserRow[];
  passkey: PasskeyRow[];
  greedy: GreedyRow[];
  copy: CopyRow[];
}

type Ppl = Extract<QualityResult, { kind: 'perplexity' }>;
type Greedy = Extract<QualityResult, { kind: 'greedy' }>;
type Bytes = Extract<QualityResult, { kind: 'bytes' }>;

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

/** Build the summary tables from the plan and the outcomes of each back end. */
export function summarize(plan: ModelJobs[], nodeOutcomes: JobOutcome[], browserOutcomes: JobOutcome[], referenceOutcomes: JobOutcome[]): Summary {
  const jobs = new Map<string, EvalJob>(plan.flatMap((p) => p.jobs.map((j) => [j.id, j] as [string, EvalJob])));
  const node = new Map(nodeOutcomes.filter((o) => o.result).map((o) => [o.id, o.result as QualityResult]));
  const chrome = new Map(browserOutcomes.filter((o) => o.result).map((o) => [o.id, o.result as QualityResult]));
  const reference = new Map(referenceOutcomes.filter((o) => o.result).map((o) => [o.id, o.result as QualityResult]));
  const model = (id: string) => id.split('|')[0];
  const summary: Summary = { perplexity: [], browser: [], passkey: [], greedy: [], copy: [] };
  const maxContext = new Map<string, number>();
  for (const j of jobs.values()) {
    if (j.meta.what === 'bytes') maxContext.set(model(j.id), Math.max(maxContext.get(model(j.id)) ?? 0, j.meta.n));
  }

  // Perplexity and bytes (Node), and the Chromium comparison.
  for (const [id, job] of jobs) {
    if (job.meta.what !== 'perplexity') continue;
    const m = model(id);
    const { mode, n } = job.meta;
    const r = node.get(id) as Ppl | undefined;
    const full = node.get(`${m}|ppl|full|${n}`) as Ppl | undefined;
    if (r) {
      const f16 = node.get(`${m}|bytes|${mode}|${n}|f16`) as Bytes | undefined;
      const max = maxContext.get(m) ?? null;
      const f16Max = max === null ? undefined : (node.get(`${m}|bytes|${mode}|${max}|f16`) as Bytes | undefined);
      summary.perplexity.push({
        model: m,
        n,
        mode,
        sweep: job.meta.sweep ?? false,
        ppl: r.ppl,
        deltaPct: full ? 100 * (r.ppl / full.ppl - 1) : null,
        kvBytes: r.kv.kvBytes,
        fp16Bytes: r.kv.fp16Bytes,
        ratio: r.kv.fp16Bytes / r.kv.kvBytes,
        kvBytesF16: f16?.kv.kvBytes ?? null,
        ratioF16: f16 ? f16.kv.fp16Bytes / f16.kv.kvBytes : null,
        maxContext: f16Max ? max : null,
        ratioF16Max: f16Max ? f16Max.kv.fp16Bytes / f16Max.kv.kvBytes : null,
        ms: r.ms,
      });
    }
    const c = chrome.get(id) as Ppl | undefined;
    const ref = reference.get(id) as Ppl | undefined;
    if (job.browser && (c || ref)) {
      summary.browser.push({
        model: m,
        n,
        mode,
        node: r?.ppl ?? null,
        chromium: c?.ppl ?? null,
        reference: ref?.ppl ?? null,
        absDiff: r && c ? Math.abs(r.ppl - c.ppl) : null,
        nodeMs: r?.ms ?? null,
        chromiumMs: c?.ms ?? null,
      });
    }
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

  // Passkey accuracy per format, mode and context.
  const groups = new Map<string, PasskeyRow & { answers: Map<string, number> }>();
  for (const [id, job] of jobs) {
    if (job.meta.what !== 'passkey') continue;
    const r = node.get(id) as Greedy | undefined;
    if (!r) continue;
    const { format, mode, context, trial, key } = job.meta;
    const gid = `${model(id)}|${format}|${mode}|${context}`;
    let g = groups.get(gid);
    if (!g) {
      g = { model: model(id), format, mode, context, trials: 0, correct: 0, accuracy: 0, sameAsFull: mode === 'full' ? null : 0, typicalAnswer: '', answers: new Map() };
      groups.set(gid, g);
    }
    g.trials++;
    if (answeredKey(r.text) === key) g.correct++;
    g.answers.set(r.text, (g.answers.get(r.text) ?? 0) + 1);
    const ref = node.get(`${model(id)}|passkey|${format}|full|${context}|${trial}`) as Greedy | undefined;
    if (g.sameAsFull !== null && ref && ref.text === r.text) g.sameAsFull++;
  }
  for (const { answers, ...g } of groups.values()) {
    const typical = [...answers.entries()].sort((a, b) => b[1] - a[1])[0];
    summary.passkey.push({ ...g, accuracy: g.correct / g.trials, typicalAnswer: typical ? `${JSON.stringify(typical[0])} ×${typical[1]}` : '' });
  }

  // Copy diagnostic: NLL of each copy from the cumulative means.
  const copyNames = new Set<string>();
  for (const j of jobs.values()) if (j.meta.what === 'copy') copyNames.add(j.meta.name);
  for (const name of copyNames) {
    const r = [1, 2, 3].map((c) => [...jobs.values()].find((j) => j.meta.what === 'copy' && j.meta.name === name && j.meta.copies === c)).map((j) => (j ? (node.get(j.id) as Ppl | undefined) : undefined));
    if (r.some((x) => !x)) continue;
    const [a, b, c] = r as Ppl[];
    const total = (x: Ppl) => x.nll * x.predicted;
    summary.copy.push({ name, nll: [a.nll, (total(b) - total(a)) / (b.predicted - a.predicted), (total(c) - total(b)) / (c.predicted - b.predicted)] });
  }
  return summary;
}
