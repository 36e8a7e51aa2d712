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
  adapter: string;
}

/** speed.md for a report. */
export function markdown(report: Report): string {
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const lines = [
    '# Speed benchmark',
    '',
    `Run ${report.date} at commit \`${report.commit.slice(0, 12) || 'unknown'}\`${report.dirty ? ' (with local changes)' : ''}` +
      ` by \`npm run bench${report.args.length ? ' ' + report.args.join(' ') : ''}\` in ${report.wallSeconds.toFixed(0)} s.`,
    `Machine: ${report.machine.os}, ${report.machine.cpuCount} × ${report.machine.cpu}, ${report.machine.memoryGiB} GiB; Node ${report.machine.node}` +
      (report.machine.chromium ? `; Chromium ${report.machine.chromium}` : '') + '.',
    `Decode tok/s: the last ${report.decodeTokens} steps ending at the context length; prefill tok/s: the whole context in chunks of 128.`,
    ...(report.rowsRun ? [`This table is carried over from the run of ${report.rowsRun.date} at \`${report.rowsRun.commit.slice(0, 12)}\` (this run skipped it).`] : []),
    '',
    '| backend | model | weights | context | prefill tok/s | decode tok/s |',
    '|---|---|---|---:|---:|---:|',
    ...report.rows.map((r) => `| ${r.backend} | ${r.model} | ${r.weights} | ${r.context} | ${fmt(r.prefillTokensPerSecond)} | ${fmt(r.decodeTokensPerSecond)} |`),
    '',
    'Adapters:',
    ...Object.entries(report.adapters).map(([backend, a]) => `- ${backend}: ${a}`),
  ];
  if (report.errors.length) lines.push('', 'Errors:', ...report.errors.map((e) => `- ${e}`));
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
  /** Set when `rows` were carried over from an earlier run (--modes-only). */
  rowsRun?: { date: string; commit: string };
  kvModes: KvModeSection[];
  kernels: KernelSection | null;
  errors: string[];
}
