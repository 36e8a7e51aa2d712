/**
 * bench/results/gguf-agreement.md from the JSON report of bench/gguf-agreement.ts.
 */
import type { Agreement } from './agreement';

/** One file on one back end. */
export interface AgreementRow {
  model: string;
  kind: string;
  file: string;
  /** Bytes of the file's matrices per ggml type. */
  typeBytes: Record<string, number>;
  backend: string;
  agreement: Agreement | null;
  error?: string;
  /** Weight bytes allocated on the GPU (Node run) and their dtypes. */
  gpuWeightBytes?: number;
  gpuWeightDtype?: string;
  /** Whether the issue's bar is read from this row (ours, with llama.cpp numerics); others are for comparison. */
  barRow?: boolean;
}

export interface AgreementReport {
  commit: string;
  date: string;
  command: string;
  llamaCpp: string;
  chromium: string;
  backends: Record<string, string>;
  rows: AgreementRow[];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

function mix(typeBytes: Record<string, number>): string {
  const total = Object.values(typeBytes).reduce((a, b) => a + b, 0);
  return Object.entries(typeBytes)
    .sort((a, b) => b[1] - a[1])
    .map(([t, b]) => `${t} ${Math.round((b / total) * 100)}%`)
    .join(', ');
}

/** The Markdown report. */
export function agreementMarkdown(r: AgreementReport): string {
  const lines = [
    '# GGUF files against llama.cpp',
    '',
    `Commit ${r.commit}, ${r.date}. Command: \`${r.command}\`. Oracle: ${r.llamaCpp}.`,
    `Back ends: ${Object.entries(r.backends).map(([b, a]) => `${b} = ${a}`).join('; ')}${r.chromium ? `; Chromium ${r.chromium}` : ''}.`,
    '',
    'Files written by `scripts/gguf-models.ts` from the shared safetensors (llama.cpp\'s type fallbacks for rows that are not whole blocks;',
    '`type mix` is the share of matrix bytes per ggml type). Greedy: share of the positions where our and llama.cpp\'s continuations agree, and',
    'the first divergence; top-1: teacher-forced agreement over 512 tokens (byte-llama-12l: held-out Dracula; stories260k: a story sampled',
    'from its f32 weights). Bars: F32 and Q8_0 greedy equal over 64 tokens; other types top-1 ≥ 99% and greedy ≥ 90% over 128.',
    '',
    'Ours run with llama.cpp numerics, the default for GGUF files (`ggufNumerics: \'llama.cpp\'`): the input of every product is rounded as',
    'llama.cpp\'s CPU back end rounds it for the weight\'s type (Q8_0 blocks of 32, Q8_K blocks of 256, f16 for f16 weights, Q8_1 for Q4_1/Q5_1,',
    'whose min term is then taken on the f16 block sums; `shaders/round_input.wgsl`, `shaders/min_term.wgsl`). The bars are read from these rows. Rows `…, f32 products` are the same engine with `ggufNumerics: \'f32\'`',
    '(products on f32 inputs) and rows `cpu reference + llama.cpp activation rounding` the CPU reference (f64 sums) with that rounding, and',
    'for Q4_1/Q5_1 with llama.cpp\'s whole Q8_1 product (Q8_0\'s values, the min term on each block\'s f16 sum; bench/gguf/llama-activations.ts):',
    'both for comparison, not held to the bar.',
    '',
    '`mismatch margin`: the largest of our top-1 − runner-up logit gaps at the positions where the two engines disagree, next to the median gap',
    'over all positions: small values mean the disagreements are near-ties.',
    '',
    '| model | file type | type mix | back end | greedy | first divergence | top-1 | first top-1 mismatch | mismatch margin (median) | bar |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const row of r.rows) {
    const a = row.agreement;
    if (!a) {
      lines.push(`| ${row.model} | ${row.kind} | ${mix(row.typeBytes)} | ${row.backend} | error: ${row.error} | | | | | **fail** |`);
      continue;
    }
    lines.push(
      `| ${row.model} | ${row.kind} | ${mix(row.typeBytes)} | ${row.backend} | ${pct(a.greedyAgreement)} of ${a.greedyTokens} | ${a.greedyPrefix === a.greedyTokens ? '—' : a.greedyPrefix} | ${a.top1Matches}/${a.top1Tokens} (${pct(a.top1Agreement)}) | ${a.firstTop1Mismatch < 0 ? '—' : a.firstTop1Mismatch} | ${a.maxMismatchMargin === null ? '—' : a.maxMismatchMargin.toFixed(3)} (${a.medianMargin?.toFixed(2) ?? '—'}) | ${row.barRow === false ? (a.pass ? '(pass)' : '(miss)') : a.pass ? 'pass' : '**fail**'} |`,
    );
  }
  const gpu = r.rows.filter((x) => x.gpuWeightBytes !== undefined && x.backend.startsWith('node') && x.barRow !== false);
  if (gpu.length) {
    lines.push('', '## Weight bytes on the GPU (Node run, f32 float tensors)', '', '| file | GPU dtypes | GPU weight bytes |', '|---|---|---:|');
    for (const x of gpu) lines.push(`| ${x.file} | ${x.gpuWeightDtype} | ${mib(x.gpuWeightBytes as number)} |`);
  }
  return lines.join('\n') + '\n';
}
