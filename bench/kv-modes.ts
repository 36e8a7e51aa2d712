/**
 * The per-KV-mode section of `npm run bench`: summarizes the rounds of KvModeSpeedSample that
 * Engine.benchmarkKvModes measured (in Node/Dawn and in the Chromium bench page) into one row per
 * backend, mode and context, with every ratio taken against `full` of the same round, and renders the
 * "KV modes" table of speed.md.
 */
import type { KvModeBenchResult, KvModeSpeedSample } from '../src/worker/api';

/** The bar: compressed decode at the largest context at most this much slower (step time) than full. */
export const MAX_SLOWDOWN = 0.15;

/** One backend's measured mode section, as stored in speed.json. */
export interface KvModeSection {
  backend: string;
  model: string;
  weights: string;
  adapter: string;
  timing: KvModeBenchResult['timing'];
  contexts: number[];
  decodeTokens: number;
  rounds: number;
  samples: KvModeSpeedSample[];
  rows: KvModeRow[];
  /** The run that measured this section (sections a later run skipped are carried over). */
  run?: { date: string; commit: string; dirty?: boolean };
}

/** Median over rounds of one mode at one context, and its ratios to full in the same rounds. */
export interface KvModeRow {
  mode: string;
  context: number;
  rounds: number;
  decodeTokensPerSecond: number;
  /** Median over rounds of (mode tok/s ÷ full tok/s of that round); [min, max] over rounds. */
  decodeRatio: number;
  decodeRatioRange: [number, number];
  /** (max − min) ÷ median of this mode's decode tok/s over rounds: how noisy the machine was. */
  decodeSpread: number;
  attentionMs: number;
  attentionRatio: number;
  attentionRatioRange: [number, number];
  cacheWriteMs: number;
  /** (attention + cache writes) ÷ full's, median over rounds: the whole KV part of a step. */
  kvRatio: number;
  otherGpuMs: number;
  prefillTokensPerSecond: number;
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function range(xs: number[]): [number, number] {
  const s = xs.filter((x) => Number.isFinite(x));
  return s.length ? [Math.min(...s), Math.max(...s)] : [NaN, NaN];
}

/** One row per (mode, context) in the order measured; ratios against `baseline` of the same round and context. */
export function summarizeKvModes(samples: KvModeSpeedSample[], baseline = 'full'): KvModeRow[] {
  const base = new Map(samples.filter((s) => s.mode === baseline).map((s) => [`${s.round}|${s.context}`, s]));
  const groups = new Map<string, KvModeSpeedSample[]>();
  for (const s of samples) {
    const key = `${s.mode}|${s.context}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return [...groups.values()].map((g) => {
    const pairs = g.map((s) => [s, base.get(`${s.round}|${s.context}`)] as const).filter(([, b]) => b !== undefined);
    const decodeRatios = pairs.map(([s, b]) => s.decodeTokensPerSecond / (b as KvModeSpeedSample).decodeTokensPerSecond);
    const attentionRatios = pairs.map(([s, b]) => s.attentionMs / (b as KvModeSpeedSample).attentionMs);
    const kvRatios = pairs.map(([s, b]) => (s.attentionMs + s.cacheWriteMs) / ((b as KvModeSpeedSample).attentionMs + (b as KvModeSpeedSample).cacheWriteMs));
    const tps = g.map((s) => s.decodeTokensPerSecond);
    const [lo, hi] = range(tps);
    return {
      mode: g[0].mode,
      context: g[0].context,
      rounds: g.length,
      decodeTokensPerSecond: median(tps),
      decodeRatio: median(decodeRatios),
      decodeRatioRange: range(decodeRatios),
      decodeSpread: (hi - lo) / median(tps),
      attentionMs: median(g.map((s) => s.attentionMs)),
      attentionRatio: median(attentionRatios),
      attentionRatioRange: range(attentionRatios),
      cacheWriteMs: median(g.map((s) => s.cacheWriteMs)),
      kvRatio: median(kvRatios),
      otherGpuMs: median(g.map((s) => s.otherGpuMs)),
      prefillTokensPerSecond: median(g.map((s) => s.prefillTokensPerSecond)),
    };
  });
}

/** Whether a row meets the bar at the section's largest context (other contexts are not judged). */
export function meetsBar(row: KvModeRow, largestContext: number): boolean | null {
  if (row.context !== largestContext || row.mode === 'full') return null;
  return row.decodeRatio >= 1 / (1 + MAX_SLOWDOWN);
}

const num = (x: number, digits = 2) => (!Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const ratio = (x: number, r: [number, number]) => (!Number.isFinite(x) ? '–' : `${x.toFixed(2)} (${r[0].toFixed(2)}–${r[1].toFixed(2)})`);

/** The "KV modes" part of speed.md. */
export function kvModesMarkdown(sections: KvModeSection[], note: string | null): string[] {
  if (sections.length === 0) return [];
  const lines = [
    '## KV modes',
    '',
    ...(note ? [note, ''] : []),
    'Each round switches the engine through every mode (interleaved, one model, `setKvMode`-style cache replacement) and grows one',
    'cache per mode through the contexts: chunked prefill to C − 2S, S profiled decode steps, then S plain decode steps ending at C',
    '(decode tok/s). Attention and cache-write times are per decode step, summed over all layers, mean of the profiled steps:',
    'GPU time from `timestamp-query` (one pass per dispatch of the attention section) when the adapter has it, else a CPU-side',
    'estimate (labelled cpu-repeat: wall-time cost of one more copy of every attention dispatch). Table values are medians over',
    'rounds; ratios are to `full` of the same round, median (min–max over rounds). "other GPU" is every non-KV kernel of the step.',
    `Bar: at the largest context, decode step time at most ${(100 * MAX_SLOWDOWN).toFixed(0)}% above full's (tok/s ratio ≥ ${(1 / (1 + MAX_SLOWDOWN)).toFixed(3)}).`,
    '',
  ];
  for (const s of sections) {
    const largest = Math.max(...s.contexts);
    lines.push(
      `### ${s.backend}: ${s.model} (${s.weights} weights), ${s.rounds} round(s), S = ${s.decodeTokens}, timing: ${s.timing}`,
      '',
      ...(s.run ? [`Measured ${s.run.date} at commit \`${s.run.commit.slice(0, 12) || 'unknown'}\`${s.run.dirty ? ' (with local changes)' : ''}. Adapter: ${s.adapter}.`, ''] : []),
      '| mode | context | decode tok/s | decode vs full | spread | attention ms | attention vs full | cache writes ms | KV part vs full | other GPU ms | bar |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...s.rows.map((r) => {
        const bar = meetsBar(r, largest);
        return (
          `| ${r.mode} | ${r.context} | ${num(r.decodeTokensPerSecond)} | ${ratio(r.decodeRatio, r.decodeRatioRange)} | ${(100 * r.decodeSpread).toFixed(0)}% | ` +
          `${num(r.attentionMs)} | ${ratio(r.attentionRatio, r.attentionRatioRange)} | ${num(r.cacheWriteMs)} | ${num(r.kvRatio)} | ${num(r.otherGpuMs, 1)} | ` +
          `${bar === null ? '' : bar ? 'ok' : '**miss**'} |`
        );
      }),
      '',
    );
  }
  return lines;
}

/** One round's measurement of bench/attention-kernels.ts: the KV part of a decode step alone. */
export interface KernelSample {
  mode: string;
  round: number;
  context: number;
  /** Attention kernels of all layers, ms per step (GPU timestamps). */
  attentionMs: number;
  /** Attention kernels plus cache writes, ms per step. */
  kvMs: number;
}

/** The kernel-level KV-mode section, as stored in speed.json. */
export interface KernelSection {
  backend: string;
  adapter: string;
  layers: number;
  steps: number;
  rounds: number;
  samples: KernelSample[];
  rows: Array<{ mode: string; context: number; attentionMs: number; attentionRatio: number; attentionRatioRange: [number, number]; kvMs: number; kvRatio: number; kvRatioRange: [number, number] }>;
  run?: { date: string; commit: string; dirty?: boolean };
}

/** Median per (mode, context) over rounds, with ratios to full of the same round. */
export function summarizeKernels(samples: KernelSample[], baseline = 'full'): KernelSection['rows'] {
  const base = new Map(samples.filter((s) => s.mode === baseline).map((s) => [`${s.round}|${s.context}`, s]));
  const groups = new Map<string, KernelSample[]>();
  for (const s of samples) groups.set(`${s.mode}|${s.context}`, [...(groups.get(`${s.mode}|${s.context}`) ?? []), s]);
  return [...groups.values()].map((g) => {
    const attention = g.map((s) => s.attentionMs / (base.get(`${s.round}|${s.context}`)?.attentionMs ?? NaN));
    const kv = g.map((s) => s.kvMs / (base.get(`${s.round}|${s.context}`)?.kvMs ?? NaN));
    return {
      mode: g[0].mode,
      context: g[0].context,
      attentionMs: median(g.map((s) => s.attentionMs)),
      attentionRatio: median(attention),
      attentionRatioRange: range(attention),
      kvMs: median(g.map((s) => s.kvMs)),
      kvRatio: median(kv),
      kvRatioRange: range(kv),
    };
  });
}

/** The kernel-level table of speed.md. */
export function kernelsMarkdown(k: KernelSection | null): string[] {
  if (!k) return [];
  return [
    `### ${k.backend}: KV kernels alone (bench/attention-kernels.ts), ${k.rounds} round(s), ${k.steps} decode steps`,
    '',
    `Attention kernels and cache writes of ${k.layers} layers with the byte-llama-12l attention shapes (merged modes: one pair over two`,
    'base layers, as in 12 layers), caches filled with random rows; GPU time per decode step from timestamp-query, median over rounds;',
    'ratios to full of the same round, median (min–max). Less exposed to CPU contention than whole-model decode.' +
      (k.run ? ` Measured ${k.run.date} at commit \`${k.run.commit.slice(0, 12) || 'unknown'}\`${k.run.dirty ? ' (with local changes)' : ''}. Adapter: ${k.adapter}.` : ''),
    '',
    '| mode | context | attention ms | attention vs full | attention + cache writes ms | KV part vs full |',
    '|---|---:|---:|---:|---:|---:|',
    ...k.rows.map((r) => `| ${r.mode} | ${r.context} | ${num(r.attentionMs)} | ${ratio(r.attentionRatio, r.attentionRatioRange)} | ${num(r.kvMs)} | ${ratio(r.kvRatio, r.kvRatioRange)} |`),
    '',
  ];
}
