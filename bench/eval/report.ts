/**
 * The markdown of bench/results/quality.md: run facts, protocol, and the summary tables, with the quality
 * targets checked against the measured numbers.
 */
import type { PasskeyFormat } from './text';
import type { PerplexityRow, Summary } from './summary';

/** Facts about the run that the report names. */
export interface RunFacts {
  date: string;
  commit: string;
  dirty: boolean;
  command: string;
  wallSeconds: number;
  machine: string;
  backends: Record<string, string>;
  errors: string[];
  passkeyFormats: Array<Pick<PasskeyFormat, 'name' | 'describe'>>;
  passkeyTrials: number;
  seed: number;
}

const kib = (b: number | null) => (b === null ? '–' : `${(b / 1024).toFixed(0)} KiB`);
const x = (r: number | null) => (r === null ? '–' : `${r.toFixed(2)}×`);
const pct = (d: number | null, digits = 2) => (d === null ? '–' : `${d >= 0 ? '+' : ''}${d.toFixed(digits)}%`);
const pctOf = (k: number, n: number) => `${k}/${n} (${((100 * k) / n).toFixed(0)}%)`;

function perplexityTable(rows: PerplexityRow[]): string[] {
  return [
    '| mode | ppl | Δ vs full | KV bytes (f32 run) | ×fp16 | KV bytes (f16 layout) | ×fp16 | ×fp16 at max context (f16 layout) | s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.mode} | ${r.ppl.toFixed(4)} | ${pct(r.deltaPct)} | ${kib(r.kvBytes)} | ${x(r.ratio)} | ${kib(r.kvBytesF16)} | ${x(r.ratioF16)} | ${r.maxContext === null ? '–' : `${x(r.ratioF16Max)} @${r.maxContext}`} | ${(r.ms / 1000).toFixed(1)} |`),
  ];
}

/** Target checks on the main tables (|Δppl| is used: a compressed cache that shifts ppl either way is off). */
function targets(s: Summary): string[] {
  const lines = ['| target | model, N | measured | met |', '|---|---|---|---|'];
  const main = s.perplexity.filter((r) => !r.sweep && r.mode !== 'full');
  const check = (mode: string, limit: number) => {
    for (const r of main.filter((q) => q.mode === mode)) {
      if (r.deltaPct === null) continue;
      lines.push(`| ${mode}: \\|Δppl\\| ≤ ${limit}% | ${r.model}, ${r.n} | ${pct(r.deltaPct, 3)} | ${Math.abs(r.deltaPct) <= limit ? 'yes' : 'no'} |`);
    }
  };
  check('int8', 0.1);
  check('kivi-4', 1);
  check('kivi-2', 5);
  for (const r of main.filter((q) => q.mode.startsWith('merge+kivi'))) {
    if (r.deltaPct === null) continue;
    const passkey = s.passkey.filter((p) => p.model === r.model && p.format === 'classic' && p.mode === r.mode);
    const full = (ctx: number) => s.passkey.find((p) => p.model === r.model && p.format === 'classic' && p.mode === 'full' && p.context === ctx);
    const pk = passkey.length ? passkey.map((p) => `${p.context}: ${p.correct} vs full ${full(p.context)?.correct ?? '?'}`).join(', ') : 'not run';
    const pkMet = passkey.length > 0 && passkey.every((p) => p.correct === full(p.context)?.correct);
    const pkVacuous = pkMet && passkey.every((p) => full(p.context)?.correct === 0);
    const bytesMet = (r.ratioF16 ?? 0) >= 8;
    lines.push(
      `| ${r.mode}: ≥ 8× smaller at \\|Δppl\\| ≤ 2%, passkey = full | ${r.model}, ${r.n} | ${x(r.ratioF16)} at N (f16 layout; ${x(r.ratioF16Max)} @${r.maxContext ?? '?'}), ${pct(r.deltaPct)}, passkey correct ${pk} | ` +
        `${bytesMet && Math.abs(r.deltaPct) <= 2 && pkMet ? 'yes' : 'no'} (size ${bytesMet ? 'yes' : 'no'}, ppl ${Math.abs(r.deltaPct) <= 2 ? 'yes' : 'no'}, passkey ${pkMet ? (pkVacuous ? 'yes, vacuous: full scores 0' : 'yes') : passkey.length ? 'no' : '–'}) |`,
    );
  }
  return lines;
}

/** The whole markdown report. */
export function markdown(s: Summary, f: RunFacts): string {
  const out: string[] = [
    '# KV-cache compression quality',
    '',
    `Run ${f.date} at commit \`${f.commit.slice(0, 12) || 'unknown'}\`${f.dirty ? ' (with local changes)' : ''} by \`${f.command}\` in ${f.wallSeconds.toFixed(0)} s.`,
    `Machine: ${f.machine}.`,
    'Back ends:',
    ...Object.entries(f.backends).map(([b, a]) => `- ${b}: ${a}`),
    '',
    'Protocol (docs/kv-compression.md, "Measuring quality"): f32 weights and f32 full-precision K/V on both back ends (SwiftShader has no',
    'shader-f16), steps of 64 tokens; every measurement starts from a fresh cache of the mode, reserved to exactly the tokens it will hold.',
    '- Perplexity: /work/shared/eval/dracula.txt, CRLF→LF, from the line after `*** START OF`; BOS then the tokenizer\'s ids. The model',
    '  reads the first N tokens in chunks of 64 (each chunk attends to the compressed cache of earlier chunks plus itself) and the',
    '  logits at i score token i+1, so N tokens are scored and the cache ends holding N (full at N = 512 reproduces the models',
    '  README\'s reference 4.960). KV bytes are real allocations (summed layerStats): "f32 run" after the run itself;',
    '  "f16 layout" is a cache of the same mode built with f16 full-precision parts (the layout on shader-f16 adapters),',
    '  reserved to N and not run. ×fp16 = (2 × L × Hk × d × N × 2 bytes) / allocated bytes.',
    `- Greedy agreement: a Dracula prompt (Chapter I from "3 May. Bistritz"), 128 greedy tokens; agreement = fraction of positions equal to full\'s continuation.`,
    `- Passkey: ${f.passkeyTrials} trials per context length, seed ${f.seed}; key = 5 digits (10000–99999), depth uniform in [0, 1) (needle after round(depth × units) filler units), answer = greedy continuation; correct when its first run of digits equals the key. Format \`classic\`: ${f.passkeyFormats[0]?.describe ?? ''}.`,
    '',
  ];

  const models = [...new Set(s.perplexity.map((r) => `${r.model}|${r.n}`))];
  out.push('## Perplexity (Node/Dawn)', '');
  for (const key of models) {
    const [model, n] = key.split('|');
    const rows = s.perplexity.filter((r) => r.model === model && String(r.n) === n && !r.sweep);
    if (!rows.length) continue;
    out.push(`### ${model}, N = ${n}`, '', ...perplexityTable(rows), '');
  }

  if (s.browser.length) {
    const both = s.browser.filter((r) => r.absDiff !== null);
    const rel = (a: number | null, b: number | null) => (a === null || b === null ? null : Math.abs(a - b) / b);
    const worst = (rows: typeof both, f: (r: (typeof both)[number]) => number | null) => Math.max(0, ...rows.map(f).filter((v): v is number => v !== null));
    const unquantized = (r: (typeof both)[number]) => r.mode === 'full' || r.mode === 'merge';
    out.push('## Node/Dawn vs Chromium vs CPU reference (perplexity)', '');
    if (both.length) {
      out.push(
        `Largest |Node − Chromium|: ${worst(both, (r) => r.absDiff).toExponential(2)} in ppl, ${(100 * worst(both, (r) => rel(r.chromium, r.node))).toExponential(2)}% relative over all modes; ` +
          `${(100 * worst(both.filter(unquantized), (r) => rel(r.chromium, r.node))).toExponential(2)}% over full and merge (no quantized codes, whose rounding can flip on a last-bit difference).`,
        `Largest |Node − CPU reference|: ${(100 * worst(s.browser, (r) => rel(r.node, r.reference))).toExponential(2)}%; largest |Chromium − CPU reference|: ${(100 * worst(s.browser, (r) => rel(r.chromium, r.reference))).toExponential(2)}%.`,
        '',
      );
    }
    const p5 = (v: number | null) => (v === null ? '–' : v.toFixed(5));
    const sec = (v: number | null) => (v === null ? '–' : (v / 1000).toFixed(1));
    out.push('| model | N | mode | ppl Node/Dawn | ppl Chromium | ppl CPU reference | abs diff Node−Chromium | s Node | s Chromium |', '|---|---:|---|---:|---:|---:|---:|---:|---:|');
    for (const r of s.browser) out.push(`| ${r.model} | ${r.n} | ${r.mode} | ${p5(r.node)} | ${p5(r.chromium)} | ${p5(r.reference)} | ${r.absDiff === null ? '–' : r.absDiff.toExponential(2)} | ${sec(r.nodeMs)} | ${sec(r.chromiumMs)} |`);
    out.push('');
  }

  const main = s.passkey.filter((p) => p.format === 'classic');
  if (main.length) {
    out.push('## Passkey retrieval', '', '| model | mode | context | correct | same answer as full | most frequent answer |', '|---|---|---:|---:|---:|---|');
    for (const p of main) out.push(`| ${p.model} | ${p.mode} | ${p.context} | ${pctOf(p.correct, p.trials)} | ${p.sameAsFull === null ? '–' : pctOf(p.sameAsFull, p.trials)} | ${p.typicalAnswer.replace(/\|/g, '\\|')} |`);
    out.push('');
  }
  const probe = s.passkey.filter((p) => p.format !== 'classic');
  if (probe.length) {
    out.push('### Passkey formats tried (full cache)', '', '| format | context | correct | most frequent answer | prompt |', '|---|---:|---:|---|---|');
    for (const p of probe) out.push(`| ${p.format} | ${p.context} | ${pctOf(p.correct, p.trials)} | ${p.typicalAnswer.replace(/\|/g, '\\|')} | ${f.passkeyFormats.find((q) => q.name === p.format)?.describe ?? ''} |`);
    out.push('');
  }
  if (s.copy.length) {
    out.push('### Copy diagnostic (full cache, byte-llama-12l)', '', 'A 150-character string read three times in a row; mean NLL (nats/token) of each copy. A model that retrieves from its context predicts copies 2 and 3 far better than copy 1.', '');
    out.push('| string | copy 1 | copy 2 | copy 3 |', '|---|---:|---:|---:|', ...s.copy.map((c) => `| ${c.name} | ${c.nll.map((v) => v.toFixed(3)).join(' | ')} |`), '');
  }

  if (s.greedy.length) {
    out.push('## Greedy agreement with full', '', '| model | mode | prompt tokens | agreement | first divergence |', '|---|---|---:|---:|---:|');
    for (const g of s.greedy) out.push(`| ${g.model} | ${g.mode} | ${g.promptTokens} | ${g.agreement === null ? '–' : `${(100 * g.agreement).toFixed(1)}%`} | ${g.mode === 'full' ? '–' : (g.firstDivergence ?? 'none')} |`);
    out.push('');
  }

  const sweep = s.perplexity.filter((r) => r.sweep);
  if (sweep.length) {
    out.push(`## Merge parameter sweep (${sweep[0].model}, N = ${sweep[0].n}, Node/Dawn)`, '');
    out.push('Defaults: S = L/2 = 6, γ = 0.05, t = 0.6, 2 bits, G = 32, R = 64. The default rows are in the perplexity table above.', '');
    out.push(...perplexityTable(sweep), '');
  }

  out.push('## Targets', '', ...targets(s), '');
  out.push(
    'Notes:',
    '- Fixed costs: every merged pair keeps (4 + 2) × W × E full-precision ring elements (W = R + 64, the step size) and',
    '  every KIVI layer a 2 × R × E ring; they do not grow with N, which is why the ratios grow from N to the largest',
    '  context. On top of the codes, merged pairs keep ⌈γR⌉ full-precision originals × 4 tensors per R-token block.',
    '- "f32 run" bytes are what this run allocated (f32 full-precision parts); the f16 layout is what an adapter with',
    '  shader-f16 allocates for the same mode, and is the one the size targets are checked against.',
    '',
  );
  if (f.errors.length) out.push('## Errors', '', ...f.errors.map((e) => `- ${e}`), '');
  return out.join('\n');
}
