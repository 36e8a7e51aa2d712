/**
 * `npm run eval`: the KV-compression quality harness (docs/kv-compression.md, "Measuring quality").
 *   - Plans the jobs (bench/eval/plan.ts) for the modes of bench/eval/modes.ts (main, rotated, and the
 *     frontier sweep on the main judge): divergence against full (KL, NLL, top-1 per position) on two held-out
 *     texts with N = 512/1024 windows (stories260k: 448), bytes per component, the copy test, greedy
 *     agreement, passkey at fixed depths (full first; the other modes only where full retrieves). Tokenization
 *     happens here, so every back end sees the same ids.
 *   - Node/Dawn (lavapipe here): builds bench/eval.ts with vite.bench.config.ts and runs every job there.
 *   - Chromium (SwiftShader here): replays the perplexity subset (stories260k N = 448, byte-llama N = 512, Dracula)
 *     through the page's eval mode and the real engine Worker, and runs it on the CPU reference (src/reference).
 * Writes bench/results/quality.json (run facts, raw outcomes, summary), quality.md (tables) and kv-frontier.svg.
 *
 * Flags: --quick (stories260k only, 5 passkey trials), --no-sweep (no frontier sweep), --node-only, --browser-only, --modes a,b (labels;
 *   full is always run), --passkey-trials N (default 20), --no-reference (skip the CPU-reference perplexities
 *   of the Chromium subset), --out DIR (default bench/results), --render (only rewrite quality.md and the plot
 *   from the quality.json in the output folder), --compact (drop the per-position scores from that quality.json).
 * Env: CHROMIUM_PATH (default /usr/bin/chromium), KVTAB_MODELS_DIR (models folder).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultRepos, sharedModelsDir, startHubServer } from '../scripts/hub-server';
import { HubSource } from '../src/model/source';
import { parseModelConfig } from '../src/model/config';
import type { KvShape } from '../src/kv/types';
import { EVAL_LOAD } from './eval/jobs';
import { loadTokenizer } from '../src/model/tokenizer';
import { buildEvalApp, runInChromium } from './eval/browser';
import { runJobsInNode } from './eval/node-runner';
import { runReference } from './eval/reference';
import type { JobOutcome, ModelJobs } from './eval/jobs';
import { selectModes } from './eval/modes';
import { frontierSvg } from './eval/frontier';
import { modelJobs, modelPlans, passkeyPhase2, SEED, type ModelPlan } from './eval/plan';
import { MAIN_JUDGE, MAIN_N, markdown, type RunFacts } from './eval/report';
import { summarize, type Summary } from './eval/summary';
import { answeredKey, evalTexts, passkeyFormats } from './eval/text';
import { git } from './git';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string, fallback: string | null) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};

const QUICK = flag('quick');
const OUT_DIR = path.resolve(ROOT, option('out', 'bench/results') as string);
const MODELS_DIR = sharedModelsDir();
const DRACULA = path.resolve(MODELS_DIR, '..', 'eval', 'dracula.txt');
const PASSKEY_TRIALS = Number(option('passkey-trials', '20'));

const log = (msg: string) => process.stderr.write(`[eval] ${msg}\n`);

/** One line of progress per finished job. */
function progress(o: JobOutcome, done: number, total: number): void {
  const r = o.result;
  const what = !r ? `ERROR ${o.error}` : r.kind === 'perplexity' ? `ppl ${r.ppl.toFixed(4)}` : r.kind === 'divergence' ? `KL ${(r.scores.kl.reduce((a, b) => a + b, 0) / r.tokens).toFixed(5)}` : r.kind === 'greedy' ? JSON.stringify(r.text.slice(0, 24)) : `${r.kv.kvBytes} B`;
  const ms = r && 'ms' in r ? ` (${(r.ms / 1000).toFixed(1)} s)` : '';
  log(`${o.backend} ${done}/${total} ${o.id}: ${what}${ms}`);
}

/** Build the Node runner and run every job of the jobs file, reporting each outcome as it finishes. */
function runInNode(jobsFile: string, total: number, backends: Record<string, string>): Promise<JobOutcome[]> {
  return runJobsInNode(ROOT, jobsFile, MODELS_DIR, log, (o, done) => progress(o, done, total), backends);
}

/** `--render`: rewrite quality.md from the quality.json in the output folder, without measuring anything. */
function renderOnly(): void {
  const report = JSON.parse(fs.readFileSync(path.join(OUT_DIR, 'quality.json'), 'utf8')) as RunFacts & { summary: Summary };
  const md = markdown(report.summary, report);
  fs.writeFileSync(path.join(OUT_DIR, 'quality.md'), md);
  writeFrontier(report.summary, report);
  process.stdout.write(md);
}

/**
 * Outcomes as quality.json keeps them: a divergence task's per-position scores (4 × N numbers) are summarized
 * in the summary rows, so the file keeps only their count; everything else is kept as measured.
 */
function compact(outcomes: JobOutcome[]): JobOutcome[] {
  return outcomes.map((o) => (o.result?.kind === 'divergence' ? { ...o, result: { ...o.result, scores: { nll: [], nllRef: [], kl: [], top1: [] }, positionsScored: o.result.scores.nll.length } } : o));
}

/** `--compact`: drop the per-position scores from an existing quality.json (the summary already holds their statistics). */
function compactOnly(): void {
  const file = path.join(OUT_DIR, 'quality.json');
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as { outcomes: Record<string, JobOutcome[]> };
  for (const k of Object.keys(report.outcomes)) report.outcomes[k] = compact(report.outcomes[k]);
  fs.writeFileSync(file, JSON.stringify(report, null, 1) + '\n');
}

/** kv-frontier.svg: the main judge's pooled rows at N, ratio against mean KL. */
function writeFrontier(summary: Summary, facts: RunFacts): void {
  const rows = summary.perplexity.filter((r) => r.model === MAIN_JUDGE && r.text === 'pooled' && r.n === MAIN_N);
  if (!rows.length) return;
  fs.writeFileSync(path.join(OUT_DIR, 'kv-frontier.svg'), frontierSvg(rows, `${MAIN_JUDGE}, N = ${MAIN_N}, both texts: bytes against KL (commit ${facts.commit.slice(0, 12)})`));
}

/** The KV shape of a shared model (from its config.json), with the eval's step of 64 tokens. */
function kvShapeOf(model: string): KvShape {
  const c = parseModelConfig(JSON.parse(fs.readFileSync(path.join(MODELS_DIR, model, 'config.json'), 'utf8')));
  return { numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, maxTokens: c.maxPositions, maxStepTokens: EVAL_LOAD.prefillChunk ?? 64 };
}

/** Contexts at which full answered at least one passkey trial correctly. */
function retrievingContexts(p: ModelPlan, plan: ModelJobs[], outcomes: JobOutcome[]): number[] {
  const results = new Map(outcomes.map((o) => [o.id, o.result]));
  const jobs = plan.find((q) => q.model === p.model)?.jobs ?? [];
  return p.passkeyContexts.filter((context) =>
    jobs.some((j) => {
      if (j.meta.what !== 'passkey' || j.meta.format !== 'classic' || j.meta.mode !== 'full' || j.meta.context !== context) return false;
      const r = results.get(j.id);
      return r?.kind === 'greedy' && answeredKey(r.text) === j.meta.key;
    }),
  );
}

async function main(): Promise<void> {
  if (flag('render')) return renderOnly();
  if (flag('compact')) return compactOnly();
  const t0 = performance.now();
  // Taken before anything is built: the numbers are those of this source state.
  const commit = git(['rev-parse', 'HEAD']);
  const dirty = git(['status', '--porcelain']) !== '';
  const modes = selectModes(option('modes', null));
  const texts = evalTexts(DRACULA, ROOT);
  const hub = await startHubServer({ repos: defaultRepos(MODELS_DIR) });
  const plan: ModelJobs[] = [];
  const tokenizers = new Map<string, Awaited<ReturnType<typeof loadTokenizer>>>();
  const plans = modelPlans(QUICK, PASSKEY_TRIALS);
  try {
    for (const p of plans) {
      const tok = await loadTokenizer(new HubSource(`local/${p.model}`, hub.baseUrl));
      tokenizers.set(p.model, tok);
      plan.push(modelJobs(p, tok, texts, modes, !flag('no-sweep'), kvShapeOf(p.model)));
    }
  } finally {
    await hub.close();
  }
  const total = plan.reduce((s, p) => s + p.jobs.length, 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-eval-'));
  const jobsFile = path.join(dir, 'jobs.json');
  fs.writeFileSync(jobsFile, JSON.stringify(plan));
  log(`${total} jobs over ${plan.map((p) => `${p.model} (${p.jobs.length})`).join(', ')}; modes ${modes.map((m) => m.label).join(', ')}`);

  const errors: string[] = [];
  const backends: Record<string, string> = {};
  let appDir: string | null = null;
  if (!flag('node-only')) {
    try {
      appDir = await buildEvalApp(ROOT, log);
    } catch (err) {
      errors.push(`chromium: building the app failed: ${(err as Error).message}`);
    }
  }
  let nodeOutcomes: JobOutcome[] = [];
  let browserOutcomes: JobOutcome[] = [];
  let referenceOutcomes: JobOutcome[] = [];
  const browserSubset = plan.map((p) => ({ model: p.model, jobs: p.jobs.filter((j) => j.browser) }));
  const browserJobs = browserSubset.reduce((s, p) => s + p.jobs.length, 0);
  let chromiumVersion: string | null = null;
  if (!flag('browser-only')) {
    try {
      nodeOutcomes = await runInNode(jobsFile, total, backends);
      // Phase 2: the other modes' passkey trials, only at the contexts where full retrieved a key.
      const phase2 = plans.map((p) => passkeyPhase2(p, tokenizers.get(p.model)!, texts.dracula, modes, retrievingContexts(p, plan, nodeOutcomes))).filter((p) => p.jobs.length);
      if (phase2.length) {
        const file2 = path.join(dir, 'jobs-passkey.json');
        fs.writeFileSync(file2, JSON.stringify(phase2));
        plan.push(...phase2);
        const n2 = phase2.reduce((s, p) => s + p.jobs.length, 0);
        log(`passkey phase 2: ${n2} trials where full retrieves`);
        nodeOutcomes.push(...(await runInNode(file2, n2, backends)));
      } else log('passkey phase 2: skipped, full retrieves no key at any context (the judge cannot retrieve)');
    } catch (err) {
      errors.push(`node: ${(err as Error).message}`);
      log(`Node/Dawn FAILED: ${(err as Error).message}`);
    }
    errors.push(...nodeOutcomes.filter((o) => o.error).map((o) => `node ${o.id}: ${o.error}`));
    log(`Node/Dawn finished at ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  if (!flag('no-reference')) {
    let done = 0;
    log('CPU reference: the perplexity jobs of the Chromium subset');
    referenceOutcomes = await runReference(MODELS_DIR, browserSubset, (o) => progress(o, ++done, browserJobs));
    errors.push(...referenceOutcomes.filter((o) => o.error).map((o) => `cpu-reference ${o.id}: ${o.error}`));
  }
  if (appDir) {
    try {
      let done = 0;
      const run = await runInChromium(ROOT, appDir, MODELS_DIR, browserSubset, log, (o) => progress(o, ++done, browserJobs));
      browserOutcomes = run.outcomes;
      chromiumVersion = run.chromium;
      if (run.adapter) backends[`chromium ${run.chromium}`] = run.adapter;
      errors.push(...run.errors);
    } catch (err) {
      errors.push(`chromium: ${(err as Error).message}`);
      log(`Chromium FAILED: ${(err as Error).message}`);
    }
    log(`Chromium finished at ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }

  const summary = summarize(plan, nodeOutcomes, browserOutcomes, referenceOutcomes);
  const cpus = os.cpus();
  const facts: RunFacts = {
    date: new Date().toISOString(),
    commit,
    dirty,
    command: `npm run eval${argv.length ? ' -- ' + argv.join(' ') : ''}`,
    wallSeconds: (performance.now() - t0) / 1000,
    machine: `${os.type()} ${os.release()}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}${chromiumVersion ? `; Chromium ${chromiumVersion}` : ''}`,
    backends,
    errors,
    passkeyFormats: passkeyFormats(texts.dracula).map(({ name, describe }) => ({ name, describe })),
    passkeyTrials: QUICK ? 5 : PASSKEY_TRIALS,
    seed: SEED,
  };
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const report = { ...facts, modes, summary, outcomes: { node: compact(nodeOutcomes), chromium: compact(browserOutcomes), reference: compact(referenceOutcomes) } };
  fs.writeFileSync(path.join(OUT_DIR, 'quality.json'), JSON.stringify(report, null, 1) + '\n');
  const md = markdown(summary, facts);
  fs.writeFileSync(path.join(OUT_DIR, 'quality.md'), md);
  writeFrontier(summary, facts);
  process.stdout.write(md);
  fs.rmSync(dir, { recursive: true, force: true });
  log(`wrote ${path.relative(ROOT, OUT_DIR)}/quality.json and quality.md in ${facts.wallSeconds.toFixed(0)} s`);
  process.exit(errors.length ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
