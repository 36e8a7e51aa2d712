/**
 * `npm run bench:gguf`: GGUF files against llama.cpp (issue bars, bench/gguf/agreement.ts).
 *   1. Writes the GGUF set of scripts/gguf-models.ts into .cache/gguf/ (stories260k and byte-llama-12l in
 *      every type; SmolLM2-135M shapes with random weights for the weight-bytes table).
 *   2. llama.cpp (node-llama-cpp 3.21.1, CPU, tools/llama-oracle): greedy continuation and teacher-forced top-1.
 *   3. Ours on Node/Dawn (lavapipe here) and in Chromium (SwiftShader, the real engine Worker) through the
 *      quality-task path of `npm run eval` (tasks `greedy` and `top1`).
 * Writes bench/results/gguf-agreement.{json,md}: per file and back end, greedy prefix agreement and top-1
 * agreement, the file's type mix, and the weight bytes on the GPU against f16.
 *
 * A fourth column of rows is not ours: the CPU reference (src/reference) on each file with the input of every
 * product rounded as llama.cpp's CPU back end rounds it (bench/gguf/llama-activations.ts), which shows what
 * the remaining disagreements are made of.
 * Ours run each file twice (--numerics, default both): with llama.cpp numerics (LoadOptions.ggufNumerics
 * 'llama.cpp', the default for GGUF files: each product's input rounded as llama.cpp rounds it) and with f32
 * products ('f32'); the issue's bars are read from the first.
 * Flags: --node-only, --browser-only, --no-rounding-check, --numerics llama.cpp,f32, --models a,b (default
 * stories260k,byte-llama-12l), --kinds A,B, --out DIR, --oracle-build B (llama.cpp held to its CPU build B, e.g.
 * x64 or haswell, instead of the one it picks for this CPU: bench/gguf/oracle-build.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedModelsDir } from '../scripts/hub-server';
import { openOracle } from '../tools/llama-oracle/oracle.mjs';
import { buildEvalApp, runInChromium } from './eval/browser';
import type { LoadOptions } from '../src/worker/api';
import { EVAL_LOAD, type EvalJob, type JobOutcome, type ModelJobs } from './eval/jobs';
import { runJobsInNode, type LoadedReport } from './eval/node-runner';
import { draculaBody } from './eval/text';
import { score, type Agreement, type EngineRun } from './gguf/agreement';
import { referenceWithLlamaRounding } from './gguf/llama-activations';
import { ggufCases, runOracleBuild, type GgufCase } from './gguf/oracle-build';
import { agreementMarkdown, type AgreementReport, type AgreementRow } from './gguf/report';
import { git } from './git';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (n: string) => argv.includes(`--${n}`);
const option = (n: string, fallback: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : fallback);
const OUT_DIR = path.resolve(ROOT, option('out', 'bench/results'));
const GGUF_DIR = path.join(ROOT, '.cache', 'gguf');
const MODELS = option('models', 'stories260k,byte-llama-12l').split(',');
/** Only these file kinds (`--kinds Q4_1,Q5_K`), or every kind of GGUF_SET. */
const KINDS = argv.includes('--kinds') ? option('kinds', '').split(',') : null;
type Numerics = NonNullable<LoadOptions['ggufNumerics']>;
const NUMERICS = option('numerics', 'llama.cpp,f32').split(',') as Numerics[];
/** Back-end label suffix of the runs with f32 products (the llama.cpp-numerics rows carry the plain name). */
const F32_SUFFIX = ', f32 products';
const log = (m: string) => process.stderr.write(`[gguf] ${m}\n`);
/** Not ours: the CPU reference with llama.cpp's activation rounding (bench/gguf/llama-activations.ts). */
const ROUNDING_BACKEND = 'cpu reference + llama.cpp activation rounding';

function jobsOf(c: GgufCase, numerics: Numerics): ModelJobs {
  const kvMode = { mode: 'full' } as const;
  const n = c.greedyTokens;
  const id = `${c.file}:${numerics}`;
  const jobs: EvalJob[] = [
    { id: `${id}:greedy`, meta: { what: 'gguf-greedy', kind: c.kind, tokens: n }, task: { kind: 'greedy', kvMode, promptIds: c.prompt, newTokens: n }, browser: true },
    { id: `${id}:top1`, meta: { what: 'gguf-top1', kind: c.kind, tokens: c.ids.length }, task: { kind: 'top1', kvMode, ids: c.ids }, browser: true },
  ];
  return { model: c.model, file: c.file, load: { ...EVAL_LOAD, ggufNumerics: numerics }, jobs };
}

/** Outcomes of one back end, split by the numerics their job ids name. */
function byNumerics(backend: string, list: JobOutcome[], into: Record<string, JobOutcome[]>): void {
  for (const numerics of NUMERICS) {
    const label = numerics === 'f32' ? backend + F32_SUFFIX : backend;
    into[label] = list.filter((o) => o.id.includes(`:${numerics}:`));
  }
}

function runOf(outcomes: JobOutcome[], file: string): EngineRun | string {
  const g = outcomes.find((o) => o.id.startsWith(`${file}:`) && o.id.endsWith(':greedy'));
  const t = outcomes.find((o) => o.id.startsWith(`${file}:`) && o.id.endsWith(':top1'));
  if (g?.error || t?.error || !g?.result || !t?.result) return g?.error ?? t?.error ?? 'no result';
  if (g.result.kind !== 'greedy' || t.result.kind !== 'top1') return 'wrong result kind';
  return { greedy: g.result.tokenIds, top1: t.result.top1, margin: t.result.margin };
}

async function main(): Promise<void> {
  const commit = git(['rev-parse', '--short', 'HEAD']) + (git(['status', '--porcelain', '--', 'src', 'shaders', 'bench', 'scripts']) ? '+dirty' : '');
  const body = draculaBody(path.join(sharedModelsDir(), '..', 'eval', 'dracula.txt'));
  const cases = await ggufCases(GGUF_DIR, MODELS, KINDS, body);
  log(`${cases.length} files in ${GGUF_DIR}`);

  const llama = new Map<string, EngineRun>();
  const oracleBuild = argv.includes('--oracle-build') ? option('oracle-build', '') : null;
  let oracleLibraries = '';
  if (oracleBuild) {
    const r = runOracleBuild(oracleBuild, cases);
    for (const [file, run] of Object.entries(r.runs)) llama.set(file, run);
    oracleLibraries = r.libraries.join(', ');
    log(`llama.cpp held to ${oracleBuild}: ${oracleLibraries}`);
  }
  for (const c of cases.filter((x) => !llama.has(x.file))) {
    const t0 = performance.now();
    const oracle = await openOracle(c.path, { contextSize: c.contextSize });
    try {
      llama.set(c.file, { greedy: await oracle.greedy(c.prompt, c.greedyTokens), top1: await oracle.teacherForcedTop1(c.ids) });
    } finally {
      await oracle.close();
    }
    log(`llama.cpp ${c.file}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  const plan = NUMERICS.flatMap((numerics) => cases.map((c) => jobsOf(c, numerics)));
  const jobsFile = path.join(os.tmpdir(), `kvtab-gguf-jobs-${process.pid}.json`);
  fs.writeFileSync(jobsFile, JSON.stringify(plan));
  const backends: Record<string, string> = {};
  const loaded = new Map<string, LoadedReport>();
  const outcomes: Record<string, JobOutcome[]> = {};
  if (!flag('browser-only')) {
    const node = await runJobsInNode(ROOT, jobsFile, GGUF_DIR, log, (o, done) => log(`node ${done}/${plan.length * 2} ${o.id}${o.error ? ` ERROR ${o.error}` : ''}`), backends, (r) => r.file && loaded.set(r.file, r));
    byNumerics(node[0]?.backend ?? 'node-dawn', node, outcomes);
  }
  let chromium = '';
  if (!flag('node-only')) {
    const outDir = await buildEvalApp(ROOT, log);
    const run = await runInChromium(ROOT, outDir, GGUF_DIR, plan, log, (o) => log(`chromium ${o.id}${o.error ? ` ERROR ${o.error}` : ''}`));
    chromium = run.chromium;
    if (run.outcomes[0]) byNumerics(run.outcomes[0].backend, run.outcomes, outcomes);
    if (run.adapter) backends[run.outcomes[0]?.backend ?? 'chromium'] = run.adapter;
  }

  // The CPU reference of each file with llama.cpp's activation rounding: what the disagreements are made of.
  const rounding = new Map<string, EngineRun>();
  if (!flag('no-rounding-check')) {
    for (const c of cases) {
      const t0 = performance.now();
      rounding.set(c.file, await referenceWithLlamaRounding(sharedModelsDir(), c.model, c.kind, c.prompt, c.greedyTokens, c.ids));
      log(`reference with llama.cpp rounding ${c.file}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    outcomes[ROUNDING_BACKEND] = [];
  }

  const rows: AgreementRow[] = [];
  for (const c of cases) {
    const ref = llama.get(c.file) as EngineRun;
    for (const [backend, list] of Object.entries(outcomes)) {
      const ours = backend === ROUNDING_BACKEND ? (rounding.get(c.file) as EngineRun) : runOf(list, c.file);
      const agreement: Agreement | null = typeof ours === 'string' ? null : score(c.kind, ours, ref);
      const f32Products = backend.endsWith(F32_SUFFIX);
      rows.push({ model: c.model, kind: c.kind, file: c.file, typeBytes: c.typeBytes, backend, agreement, error: typeof ours === 'string' ? ours : undefined, gpuWeightBytes: loaded.get(c.file)?.weightBytes, gpuWeightDtype: loaded.get(c.file)?.weightDtype, barRow: backend !== ROUNDING_BACKEND && !f32Products });
    }
  }
  const report: AgreementReport = {
    commit,
    date: new Date().toISOString(),
    command: `npm run bench:gguf${argv.length ? ' -- ' + argv.join(' ') : ''}`,
    llamaCpp: `node-llama-cpp 3.21.1 (llama.cpp CPU build${oracleBuild ? ` held to ${oracleLibraries || oracleBuild}` : ''}, 1 thread, F32 KV)`,
    chromium,
    backends,
    rows,
  };
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'gguf-agreement.json'), JSON.stringify(report, null, 1) + '\n');
  const md = agreementMarkdown(report);
  fs.writeFileSync(path.join(OUT_DIR, 'gguf-agreement.md'), md);
  process.stdout.write(md);
  const failed = rows.filter((r) => r.backend !== ROUNDING_BACKEND && !r.backend.endsWith(F32_SUFFIX) && !r.agreement?.pass);
  if (failed.length) log(`${failed.length} row(s) miss their bar: ${failed.map((r) => `${r.backend} ${r.file}`).join(', ')}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
