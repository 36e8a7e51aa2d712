/**
 * `npm run bench:gguf-gap`: where the CPU reference with llama.cpp's rounding (bench/gguf/llama-activations.ts) and
 * llama.cpp itself part, position by position, on the teacher-forced text of the agreement check (bench/gguf/agreement.ts).
 * Per file: llama.cpp's next-token distribution (tools/llama-oracle, teacherForcedProbs) against the reference's
 * log-softmax; a position's gap is the largest |Δ log p| over the tokens llama.cpp gives p > 1e-4.
 * The agreement table counts top-1 ids; this shows whether the two disagree by f32 noise (gaps ~1e-6) or by
 * discrete events: one element of an 8-bit-rounded input landing on the other side of a rounding step moves the
 * logits by 1e-3..1e-1 there and, through the KV cache, at every later position.
 * `--only <regex>` writes files where only the matrices whose HF name matches take the kind's type (the rest f32), to
 * find the weight that starts a gap. Flags: --model (stories260k), --kinds (Q8_0,Q4_0,Q4_1,Q5_K), --positions (200),
 * --only, --batch, --out (bench/results). Writes <out>/gguf-logit-gap.md (appends one section per run).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ggufFromHfFolder, type GgufKind } from '../scripts/gguf-models';
import { sharedModelsDir } from '../scripts/hub-server';
import { logSoftmaxRow } from '../src/engine/divergence';
import { openOracle } from '../tools/llama-oracle/oracle.mjs';
import { draculaBody } from './eval/text';
import { workload } from './gguf/agreement';
import { referenceModelWithLlamaRounding } from './gguf/llama-activations';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (n: string, fallback: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : fallback);
const MODEL = option('model', 'stories260k');
const KINDS = option('kinds', 'Q8_0,Q4_0,Q4_1,Q5_K').split(',') as GgufKind[];
const POSITIONS = Number(option('positions', '200'));
const ONLY = argv.includes('--only') ? new RegExp(option('only', '')) : undefined;
/** Tokens per llama_decode call (`--batch 1`: llama.cpp's one-token decode path instead of its batched one). */
const BATCH = argv.includes('--batch') ? Number(option('batch', '1')) : undefined;
const OUT_DIR = path.resolve(ROOT, option('out', 'bench/results'));
/** A position counts as parted when its gap exceeds this (f32 noise stays near 1e-5 on the F32 file). */
const PARTED = 1e-3;
/** Tokens below this llama.cpp probability are left out of a position's gap (their log p is all rounding). */
const P_MIN = 1e-4;

/** Per position, max |log p_ours − log p_llama| over tokens with p_llama > P_MIN. */
function gaps(logits: Float32Array, probs: Float32Array, V: number, n: number): number[] {
  return Array.from({ length: n }, (_, r) => {
    const logp = logSoftmaxRow(logits, r * V, V);
    let gap = 0;
    for (let j = 0; j < V; j++) if (probs[r * V + j] > P_MIN) gap = Math.max(gap, Math.abs(logp[j] - Math.log(probs[r * V + j])));
    return gap;
  });
}

async function main(): Promise<void> {
  const ids = (await workload(MODEL, draculaBody(path.join(sharedModelsDir(), '..', 'eval', 'dracula.txt')))).ids.slice(0, POSITIONS);
  const dir = path.join(ROOT, '.cache', 'gguf-gap');
  fs.mkdirSync(dir, { recursive: true });
  const rows: string[] = [];
  for (const kind of KINDS) {
    const written = await ggufFromHfFolder(path.join(sharedModelsDir(), MODEL), kind, MODEL, ONLY);
    const file = path.join(dir, `${MODEL}-${kind}${ONLY ? '-only' : ''}.gguf`);
    fs.writeFileSync(file, written.bytes);
    const oracle = await openOracle(file, { contextSize: 512, ...(BATCH ? { batchSize: BATCH } : {}) });
    const V = oracle.vocabSize;
    let probs: Float32Array;
    try {
      probs = await oracle.teacherForcedProbs(ids);
    } finally {
      await oracle.close();
    }
    const logits = (await referenceModelWithLlamaRounding(sharedModelsDir(), MODEL, kind, ONLY)).forward(ids);
    const g = gaps(logits, probs, V, ids.length);
    const parted = g.flatMap((v, i) => (v > PARTED ? [i] : []));
    const sorted = [...g].sort((a, b) => a - b);
    const row = `| ${kind} | ${Object.keys(written.typeBytes).join(', ')} | ${parted.length} / ${ids.length} | ${parted[0] ?? '—'} | ${sorted[sorted.length >> 1].toExponential(1)} | ${sorted[sorted.length - 1].toExponential(1)} | ${g.slice(0, 8).map((v) => v.toExponential(0)).join(' ')} |`;
    process.stdout.write(row + '\n');
    rows.push(row);
  }
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const md = [
    `## ${MODEL}${ONLY ? `, only /${ONLY.source}/ quantized` : ''} (commit ${commit}, ${new Date().toISOString()})`,
    '',
    `Command: \`npm run bench:gguf-gap -- ${argv.join(' ')}\`. ${ids.length} teacher-forced positions; gap = max |Δ log p| over tokens llama.cpp gives p > ${P_MIN}.`,
    '',
    `| kind | matrix types | positions with gap > ${PARTED} | first | median gap | max gap | gaps at positions 0–7 |`,
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const out = path.join(OUT_DIR, 'gguf-logit-gap.md');
  if (!fs.existsSync(out)) fs.writeFileSync(out, `# Where the CPU reference and llama.cpp part (bench/gguf-logit-gap.ts)\n\nOracle: node-llama-cpp 3.21.1, CPU, 1 thread, F32 KV. Each section is one run and names its commit.\n\n`);
  fs.appendFileSync(out, md + '\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
