/**
 * The speed report of `npm run bench`: the shape of bench/results/speed.json and its rendering as speed.md
 * (the main table, then the KV-mode tables of bench/kv-modes.ts).
 */
import type { SpeedRow } from '../src/worker/api';
import { kernelsMarkdown, kvModesMarkdown, type KernelSection, type KvModeSection } from './kv-modes';

/** One measured row of the results table. */
export interface ResultRow extends SpeedRow {
  backend: string;
  model: string;
  weights: string;
  /** GPU bytes of the weights as loaded. */
  weightBytes?: number;
  adapter: string;
}

/** Dispatches of one decode step of a model in one KV mode (recorded plans). */
export interface DispatchRow {
  backend: string;
  model: string;
  layers: number;
  kvMode: string;
  dispatchesPerStep: number;
}

const MIB = 2 ** 20;
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/**
 * The weight-format table: models loaded in several weight storages (name `<model> (… <format> …)`), each
 * with its GPU weight bytes and decode tok/s against the same model's float row on the same back end.
 */
function weightFormatMarkdown(rows: ResultRow[]): string[] {
  const family = (m: string) => m.replace(/\s*\(.*\)$/, '');
  const base = (r: ResultRow) => rows.find((b) => b.backend === r.backend && family(b.model) === family(r.model) && b.context === r.context && /^f(16|32)$/.test(b.weights) && b.weightBytes);
  const quantized = rows.filter((r) => r.weightBytes && /q\d/.test(r.weights) && base(r));
  if (!quantized.length) return [];
  const lines = [
    '## Weight formats',
    '',
    'The same model stored as ggml blocks (quantized on load, or a GGUF file), against its float row on the same back end and context:',
    'GPU weight bytes as allocated, and decode tok/s measured in the same run.',
    '',
    '| backend | model | weights | context | weight MiB | × float bytes | decode tok/s | × float decode |',
    '|---|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows.filter((x) => x.weightBytes && (quantized.includes(x) || quantized.some((q) => base(q) === x)))) {
    const b = base(r) ?? r;
    lines.push(
      `| ${r.backend} | ${r.model} | ${r.weights} | ${r.context} | ${((r.weightBytes as number) / MIB).toFixed(1)} | ${((r.weightBytes as number) / (b.weightBytes as number)).toFixed(3)} | ${fmt(r.decodeTokensPerSecond)} | ${(r.decodeTokensPerSecond / b.decodeTokensPerSecond).toFixed(2)} |`,
    );
  }
  return [...lines, ''];
}

/** The decode-profile table: per row, dispatches, GPU time by kernel family, host time per step, bytes read. */
function profileMarkdown(rows: ResultRow[]): string[] {
  const profiled = rows.filter((r) => r.dispatchesPerStep !== undefined);
  if (!profiled.length) return [];
  const ms = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(2));
  return [
    '## Decode profile',
    '',
    'Per decode step, at the context length: dispatches; GPU ms from timestamp-query, each dispatch in its own timed pass (the sum',
    'exceeds a plain step, which is one pass), split by kernel family; host ms of a one-step decode (encode = plan replay,',
    'wait = submit until the token is mapped); bytes read (weights + stored KV). Roofline: the bytes over the',
    'plain decode step time (what bandwidth the step reaches).',
    '',
    '| backend | model | kvMode | context | dispatches | GPU ms | top kernel families (ms) | host encode / submit / wait / read ms | MiB read (w + kv) | GB/s reached |',
    '|---|---|---|---:|---:|---:|---|---|---:|---:|',
    ...profiled.map((r) => {
      const fams = Object.entries(r.gpuMsByFamily ?? {}).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
      const h = r.host;
      const bytes = r.bytesPerStep ? r.bytesPerStep.weights + r.bytesPerStep.kv : NaN;
      const stepMs = 1000 / r.decodeTokensPerSecond;
      return `| ${r.backend} | ${r.model} | ${r.kvMode ?? 'full'} | ${r.context} | ${r.dispatchesPerStep} | ${ms(r.gpuMsPerStep)} | ${fams || '–'} | ` +
        `${h ? [h.encodeMs, h.submitMs, h.waitMs, h.readbackMs].map(ms).join(' / ') : '–'} | ` +
        `${r.bytesPerStep ? `${(r.bytesPerStep.weights / MIB).toFixed(2)} + ${(r.bytesPerStep.kv / MIB).toFixed(2)}` : '–'} | ${(bytes / stepMs / 1e6).toFixed(2)} |`;
    }),
    '',
  ];
}

/** Dispatches per decode step of every model and KV mode. */
function dispatchMarkdown(rows: DispatchRow[]): string[] {
  if (!rows.length) return [];
  const modes = [...new Set(rows.map((r) => r.kvMode))];
  const models = [...new Set(rows.map((r) => `${r.backend}|${r.model}|${r.layers}`))];
  return [
    '## Dispatches per decode step',
    '',
    'One decode step at a 512-token cache, counted from the recorded plan (Node/Dawn; the same plans run in Chromium).',
    '',
    `| model | layers | ${modes.join(' | ')} |`,
    `|---|---:|${modes.map(() => '---:').join('|')}|`,
    ...models.map((key) => {
      const [backend, model, layers] = key.split('|');
      const cells = modes.map((m) => rows.find((r) => r.backend === backend && r.model === model && r.kvMode === m)?.dispatchesPerStep ?? '–');
      return `| ${model} | ${layers} | ${cells.join(' | ')} |`;
    }),
    '',
  ];
}

/** speed.md for a report. */
export function markdown(report: Report): string {
  const lines = [
    '# Speed benchmark',
    '',
    `Run ${report.date} at commit \`${report.commit.slice(0, 12) || 'unknown'}\`${report.dirty ? ' (with local changes)' : ''}` +
      ` by \`npm run bench${report.args.length ? ' ' + report.args.join(' ') : ''}\` in ${report.wallSeconds.toFixed(0)} s.`,
    `Machine: ${report.machine.os}, ${report.machine.cpuCount} × ${report.machine.cpu}, ${report.machine.memoryGiB} GiB; Node ${report.machine.node}` +
      (report.machine.chromium ? `; Chromium ${report.machine.chromium}` : '') + '.',
    `Decode tok/s: the last ${report.decodeTokens} steps ending at the context length, greedy, queued 8 steps per wait on caches that can roll back (full), as the generate loop does; prefill tok/s: the whole context in chunks of 128.`,
    ...(report.rowsRun ? [`This table is carried over from the run of ${report.rowsRun.date} at \`${report.rowsRun.commit.slice(0, 12)}\` (this run skipped it).`] : []),
    '',
    '| backend | model | weights | kvMode | context | prefill tok/s | decode tok/s | dispatches/step |',
    '|---|---|---|---|---:|---:|---:|---:|',
    ...report.rows.map((r) => `| ${r.backend} | ${r.model} | ${r.weights} | ${r.kvMode ?? 'full'} | ${r.context} | ${fmt(r.prefillTokensPerSecond)} | ${fmt(r.decodeTokensPerSecond)} | ${r.dispatchesPerStep ?? '–'} |`),
    '',
    'Adapters:',
    ...Object.entries(report.adapters).map(([backend, a]) => `- ${backend}: ${a}`),
  ];
  if (report.errors.length) lines.push('', 'Errors:', ...report.errors.map((e) => `- ${e}`));
  lines.push('', ...weightFormatMarkdown(report.rows), ...profileMarkdown(report.rows), ...dispatchMarkdown(report.dispatches ?? []));
  lines.push('', ...kvModesMarkdown(report.kvModes, null), ...kernelsMarkdown(report.kernels));
  return lines.join('\n').trimEnd() + '\n';
}

/** bench/results/speed.json. */
export interface Report {
  date: string;
  commit: string;
  dirty: boolean;
  args: string[];
  wallSeconds: number;
  contexts: number[];
  decodeTokens: number;
  machine: { os: string; arch: string; cpu: string; cpuCount: number; memoryGiB: number; node: string; chromium: string | null; vkIcd: string | null };
  adapters: Record<string, string>;
  rows: ResultRow[];
  /** Dispatches per decode step, per model and KV mode. */
  dispatches?: DispatchRow[];
  /** Set when `rows` were carried over from an earlier run (--modes-only). */
  rowsRun?: { date: string; commit: string };
  kvModes: KvModeSection[];
  kernels: KernelSection | null;
  errors: string[];
}
