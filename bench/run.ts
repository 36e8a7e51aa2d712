/**
 * `npm run bench`: the speed harness. Measures prefill and decode tokens/s at several context lengths
 *   - in Node through Dawn (`webgpu` package; lavapipe here, a real Vulkan GPU elsewhere): builds
 *     bench/node-speed.ts with vite.bench.config.ts and runs it (stories260k, byte-llama-12l, and
 *     SmolLM2-135M shapes with random f16 weights);
 *   - in headless system Chromium (SwiftShader here): builds the app, serves it with `vite preview`
 *     next to the local hub, and opens the page's bench mode (src/ui/bench-mode.ts), which runs the
 *     same workload through the real engine Worker.
 * Then the per-KV-mode section (bench/kv-modes.ts): decode tok/s and attention GPU time of every mode of
 * BENCH_KV_MODES on byte-llama-12l, as ratios to full measured in the same rounds (Node at 128/512/2048,
 * Chromium at 512).
 * Writes bench/results/speed.json (rows, KV-mode sections, machine, adapters, date, git commit) and speed.md
 * (the tables). A section a run skips is carried over from the previous speed.json, marked with its own run.
 *
 * Flags: --quick (64 tokens, 8 decode steps, small models only; KV modes at 64 tokens, 1 round, Node only),
 *   --node-only, --browser-only, --full (also SmolLM2-135M shapes in Chromium, at 64 tokens; slow: SwiftShader
 *   has no f16), --contexts 64,256,512, --decode 16, --out DIR (default bench/results).
 *   KV modes: --modes-only (only this section), --no-modes, --modes full,int8,... (labels), --mode-contexts
 *   128,512,2048, --mode-decode 16, --rounds 3, --mode-timing auto|cpu-repeat|none, --browser-mode-contexts 512,
 *   --browser-rounds 1; the kernel-level table (bench/attention-kernels.ts, Node, at 2048 tokens): --kernels-only,
 *   --no-kernels, --kernel-contexts 2048, --kernel-rounds 3.
 *   Peer comparison (bench/peer.ts, in the Chromium part: kvtab vs @wllama/wllama GPU and CPU on stories260k, 200
 *   greedy tokens, interleaved rounds; bench/results/peer.json and peer.md): --peer-only (only this section; builds the
 *   app, leaves speed.json alone), --no-peer, --peer-rounds 3, --peer-tokens 200, --peer-warmup 16.
 * Env: CHROMIUM_PATH (default /usr/bin/chromium), KVTAB_MODELS_DIR (models folder).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { openPageMode, withAppInChromium } from '../scripts/chromium-app';
import { defaultRepos, sharedModelsDir } from '../scripts/hub-server';
import { RandomWeightsSource } from '../src/model/random-source';
import type { AdapterSummary, KvModeBenchRequest, KvModeBenchResult, SpeedRow } from '../src/worker/api';
import type { BenchPageResult } from '../src/ui/bench-mode';
import { BENCH_KV_MODES } from '../src/engine/benchmark';
import { summarizeKernels, summarizeKvModes, type KernelSample, type KernelSection, type KvModeSection } from './kv-modes';
import { markdown, type DispatchRow, type Report, type ResultRow } from './speed-report';
import { runPeerBench } from './peer';
import { git } from './git';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};

const QUICK = flag('quick');
const FULL = flag('full');
const CONTEXTS = option('contexts', QUICK ? '64' : '64,256,512').split(',').map(Number);
const DECODE = Number(option('decode', QUICK ? '8' : '16'));
const OUT_DIR = path.resolve(ROOT, option('out', 'bench/results'));
const MODELS_DIR = sharedModelsDir();
const MODES = !flag('no-modes');
const KERNELS_ONLY = flag('kernels-only');
const MODES_ONLY = flag('modes-only') || KERNELS_ONLY;
const KERNELS = !QUICK && !flag('no-kernels') && !flag('browser-only');
const MODE_MODEL = 'byte-llama-12l';
const MODE_ARGS = [
  '--modes', option('modes', ''),
  '--mode-contexts', option('mode-contexts', QUICK ? '64' : '128,512,2048'),
  '--mode-decode', option('mode-decode', String(DECODE)),
  '--repeats', option('rounds', QUICK ? '1' : '3'),
  '--mode-timing', option('mode-timing', 'auto'),
].filter((a, i, all) => a !== '' && !(a === '--modes' && all[i + 1] === ''));
const PEER_ONLY = flag('peer-only');
const PEER = PEER_ONLY || (!flag('no-peer') && !MODES_ONLY);
const PEER_ROUNDS = Number(option('peer-rounds', QUICK ? '1' : '3'));
const PEER_TOKENS = Number(option('peer-tokens', '200'));
const PEER_WARMUP = Number(option('peer-warmup', '16'));
const SMOL = 'smollm2-135m-shape';
const SMOL_RANDOM_REPO = `local/${SMOL}-random`;
/** SmolLM2 in Chromium (SwiftShader has no f16, so f32 weights and very slow kernels): 64 tokens only. */
const SMOL_BROWSER_CONTEXTS = [64];

interface NodeSpeedOutput {
  backend: string;
  icd: string | null;
  results: Array<{ model: string; weightDtype: string; weightBytes?: number; adapter: AdapterSummary; rows: SpeedRow[]; dispatches: Array<{ kvMode: string; dispatchesPerStep: number }>; layers: number }>;
  kvModes: { model: string; weightDtype: string; adapter: AdapterSummary; request: KvModeBenchRequest; result: KvModeBenchResult } | null;
}

/** A KV-mode section from a benchmark result; JSON turned NaN into null, which is turned back. */
function modeSection(backend: string, model: string, weights: string, adapter: string, request: KvModeBenchRequest, result: KvModeBenchResult): KvModeSection {
  const samples = result.samples.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v === null ? NaN : v])) as typeof s);
  const rounds = new Set(samples.map((s) => s.round)).size;
  return { backend, model, weights, adapter, timing: result.timing, contexts: request.contexts, decodeTokens: request.decodeTokens, rounds, samples, rows: summarizeKvModes(samples) };
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

/** Run a command; stdout is captured, stderr passes through. Rejects on a non-zero exit. */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

let bundlesBuilt = false;
async function buildNodeBundles(): Promise<void> {
  if (bundlesBuilt) return;
  log('Node/Dawn: building dist-bench/');
  await build({ configFile: path.join(ROOT, 'vite.bench.config.ts'), root: ROOT, logLevel: 'warn' });
  bundlesBuilt = true;
}

/** The kernel-level KV table: dist-bench/attention-kernels.js. */
async function kernelBench(): Promise<KernelSection> {
  await buildNodeBundles();
  const args = ['--contexts', option('kernel-contexts', '2048'), '--rounds', option('kernel-rounds', '3'), '--steps', option('mode-decode', String(DECODE))];
  if (option('modes', '')) args.push('--modes', option('modes', ''));
  log(`Node/Dawn: KV kernels alone ${args.join(' ')}`);
  const stdout = await run(process.execPath, [path.join(ROOT, 'dist-bench/attention-kernels.js'), ...args]);
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error('attention-kernels printed no JSON result.');
  const out = JSON.parse(line) as { adapter: string; shape: { numLayers: number }; steps: number; rounds: number; samples: KernelSample[] };
  const backend = `node-dawn (${process.env.VK_ICD_FILENAMES ? path.basename(process.env.VK_ICD_FILENAMES, '.json').replace(/_icd$/, '') : 'default ICD'})`;
  return { backend, adapter: out.adapter, layers: out.shape.numLayers, steps: out.steps, rounds: out.rounds, samples: out.samples, rows: summarizeKernels(out.samples) };
}

async function nodeBench(): Promise<{ rows: ResultRow[]; icd: string | null; kvModes: KvModeSection | null; dispatches: DispatchRow[] }> {
  await buildNodeBundles();
  const args = [path.join(ROOT, 'dist-bench/node-speed.js'), '--models', MODELS_DIR, '--contexts', CONTEXTS.join(','), '--decode', String(DECODE)];
  if (QUICK) args.push('--quick');
  if (MODES_ONLY) args.push('--modes-only');
  args.push(...(MODES ? MODE_ARGS : ['--no-modes']));
  log(`Node/Dawn: running with VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? '(unset)'}`);
  const stdout = await run(process.execPath, args);
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error('node-speed printed no JSON result.');
  const out = JSON.parse(line) as NodeSpeedOutput;
  const backend = `node-dawn (${out.icd ? path.basename(out.icd, '.json').replace(/_icd$/, '') : 'default ICD'})`;
  const rows = out.results.flatMap((r) =>
    r.rows.map((row) => ({ backend, model: r.model, weights: r.weightDtype, weightBytes: r.weightBytes, adapter: r.adapter.description, ...row })),
  );
  const dispatches = out.results.flatMap((r) => r.dispatches.map((d) => ({ model: r.model, layers: r.layers, ...d })));
  const m = out.kvModes;
  const kvModes = m ? modeSection(backend, m.model, m.weightDtype, m.adapter.description, m.request, m.result) : null;
  return { rows, icd: out.icd, kvModes, dispatches: dispatches.map((d) => ({ backend, ...d })) };
}

/** Config, tokenizer and a random f16 model.safetensors of the SmolLM2-135M shapes, written once to a temp dir. */
async function smolRandomDir(): Promise<string> {
  const src = path.join(MODELS_DIR, SMOL);
  const dir = path.join(os.tmpdir(), 'kvtab-bench', `${SMOL}-random`);
  const files = {
    'config.json': fs.readFileSync(path.join(src, 'config.json'), 'utf8'),
    'tokenizer.json': fs.readFileSync(path.join(src, 'tokenizer.json'), 'utf8'),
  };
  const { size, body } = await new RandomWeightsSource('SmolLM2-135M', files).stream('model.safetensors');
  const target = path.join(dir, 'model.safetensors');
  if (fs.existsSync(target) && fs.statSync(target).size === size) {
    await body.cancel();
    return dir;
  }
  log(`writing ${(size / 2 ** 20).toFixed(0)} MiB of random f16 weights to ${dir}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const fd = fs.openSync(`${target}.part`, 'w');
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(`${target}.part`, target);
  return dir;
}

interface BrowserCase {
  label: string;
  repo: string;
  contexts: number[];
  timeoutMs: number;
  /** Extra query parameters (the KV-mode section). */
  extra?: Record<string, string>;
}

async function browserBench(): Promise<{ rows: ResultRow[]; chromium: string; errors: string[]; kvModes: KvModeSection | null }> {
  const cases: BrowserCase[] = MODES_ONLY || PEER_ONLY ? [] : [{ label: 'stories260k', repo: 'local/stories260k', contexts: CONTEXTS, timeoutMs: 5 * 60_000 }];
  const hasModeModel = fs.existsSync(path.join(MODELS_DIR, MODE_MODEL));
  if (!QUICK && !MODES_ONLY && !PEER_ONLY && hasModeModel) {
    cases.push({ label: 'byte-llama-12l', repo: 'local/byte-llama-12l', contexts: CONTEXTS, timeoutMs: 10 * 60_000 });
    // Weight formats: the same weights quantized on load to ggml blocks.
    for (const q of ['q8', 'q4']) cases.push({ label: `byte-llama-12l (${q} on load)`, repo: 'local/byte-llama-12l', contexts: CONTEXTS, timeoutMs: 10 * 60_000, extra: { dtype: q } });
  }
  if (!QUICK && MODES && hasModeModel && !PEER_ONLY) {
    const extra = {
      kvmodes: option('modes', '') || BENCH_KV_MODES.map((m) => m.label).join(','),
      kvcontexts: option('browser-mode-contexts', '512'),
      kvdecode: option('mode-decode', String(DECODE)),
      rounds: option('browser-rounds', '1'),
    };
    cases.push({ label: `${MODE_MODEL} KV modes`, repo: `local/${MODE_MODEL}`, contexts: [], timeoutMs: 60 * 60_000, extra });
  }
  const repos = defaultRepos(MODELS_DIR);
  if (FULL && !PEER_ONLY && fs.existsSync(path.join(MODELS_DIR, SMOL))) {
    repos[SMOL_RANDOM_REPO] = await smolRandomDir();
    cases.push({ label: `${SMOL} (random f16 weights)`, repo: SMOL_RANDOM_REPO, contexts: SMOL_BROWSER_CONTEXTS, timeoutMs: 30 * 60_000 });
    for (const q of ['q8', 'q4']) cases.push({ label: `${SMOL} (random weights, ${q} on load)`, repo: SMOL_RANDOM_REPO, contexts: SMOL_BROWSER_CONTEXTS, timeoutMs: 30 * 60_000, extra: { dtype: q } });
  }

  log('Chromium: building the app into dist-bench/app');
  const outDir = path.join(ROOT, 'dist-bench/app');
  await build({ configFile: path.join(ROOT, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const rows: ResultRow[] = [];
  const errors: string[] = [];
  let kvModes: KvModeSection | null = null;
  let version = '';
  await withAppInChromium(ROOT, outDir, repos, async ({ browser, appUrl, hub }) => {
    version = browser.version();
    for (const c of cases) {
      const t0 = performance.now();
      log(`Chromium: ${c.label} at ${c.contexts.join(', ')} tokens`);
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        page.on('console', (m) => process.stderr.write(`  [page] ${m.text()}\n`));
        page.on('pageerror', (e) => process.stderr.write(`  [page error] ${e.message}\n`));
        const query = new URLSearchParams({ bench: c.contexts.join(',') || 'modes', decode: String(DECODE), model: c.repo, hub: hub.baseUrl, ...c.extra });
        const out = await openPageMode<BenchPageResult>(page, `${appUrl}?${query}`, '#bench-result', 'done', c.timeoutMs);
        const backend = `chromium (${/swiftshader/i.test(out.info.adapter.description) ? 'swiftshader' : 'webgpu'})`;
        for (const row of out.rows) rows.push({ backend, model: c.label, weights: out.info.weightDtype, weightBytes: out.info.weightBytes, adapter: out.info.adapter.description, ...row });
        const m = out.kvModes;
        if (m) kvModes = modeSection(backend, MODE_MODEL, out.info.weightDtype, out.info.adapter.description, m.request, m.result);
        log(`Chromium: ${c.label} done in ${seconds(t0)} s`);
      } catch (err) {
        errors.push(`chromium ${c.label}: ${(err as Error).message}`);
        log(`Chromium: ${c.label} FAILED: ${(err as Error).message}`);
      } finally {
        await context.close();
      }
    }
    if (PEER) {
      const t0 = performance.now();
      log(`Chromium: peer comparison (kvtab vs wllama), ${PEER_ROUNDS} round(s)`);
      try {
        const peer = await runPeerBench({ browser, appUrl, hub }, { rounds: PEER_ROUNDS, tokens: PEER_TOKENS, warmup: PEER_WARMUP, outDir: OUT_DIR, modelsDir: MODELS_DIR, log });
        errors.push(...peer.errors);
        log(`Chromium: peer done in ${seconds(t0)} s: kvtab / wllama GPU ${peer.ratio_vs_wllama_gpu.toFixed(2)}, / CPU ${peer.ratio_vs_wllama_cpu.toFixed(2)}`);
      } catch (err) {
        errors.push(`peer: ${(err as Error).message}`);
        log(`Chromium: peer FAILED: ${(err as Error).message}`);
      }
    }
  });
  return { rows, chromium: version, errors, kvModes };
}

/** The previous speed.json in the output folder, for the sections this run skips. */
function previousReport(): Partial<Report> | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(OUT_DIR, 'speed.json'), 'utf8')) as Partial<Report>;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const rows: ResultRow[] = [];
  const dispatches: DispatchRow[] = [];
  const errors: string[] = [];
  const kvModes: KvModeSection[] = [];
  let icd: string | null = process.env.VK_ICD_FILENAMES ?? null;
  let chromiumVersion: string | null = null;
  let kernels: KernelSection | null = null;
  if (PEER_ONLY) {
    // Only the peer section: build the app, run it in Chromium, and leave speed.json / speed.md as they are.
    const browser = await browserBench();
    for (const e of browser.errors) log(`error: ${e}`);
    const peerMd = path.join(OUT_DIR, 'peer.md');
    if (fs.existsSync(peerMd)) process.stdout.write(fs.readFileSync(peerMd, 'utf8'));
    process.exit(browser.errors.length ? 1 : 0);
  }
  if (!flag('browser-only') && !KERNELS_ONLY) {
    try {
      const node = await nodeBench();
      rows.push(...node.rows);
      dispatches.push(...node.dispatches);
      if (node.kvModes) kvModes.push(node.kvModes);
      icd = node.icd;
    } catch (err) {
      errors.push(`node: ${(err as Error).message}`);
      log(`Node/Dawn FAILED: ${(err as Error).message}`);
    }
    log(`Node/Dawn finished at ${seconds(t0)} s`);
  }
  if (KERNELS) {
    try {
      kernels = await kernelBench();
    } catch (err) {
      errors.push(`kernels: ${(err as Error).message}`);
      log(`KV kernels FAILED: ${(err as Error).message}`);
    }
  }
  if (!flag('node-only') && !KERNELS_ONLY) {
    try {
      const browser = await browserBench();
      rows.push(...browser.rows);
      if (browser.kvModes) kvModes.push(browser.kvModes);
      errors.push(...browser.errors);
      chromiumVersion = browser.chromium;
    } catch (err) {
      errors.push(`chromium: ${(err as Error).message}`);
      log(`Chromium FAILED: ${(err as Error).message}`);
    }
    log(`Chromium finished at ${seconds(t0)} s`);
  }
  const cpus = os.cpus();
  const report: Report = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain']) !== '',
    args: argv,
    wallSeconds: (performance.now() - t0) / 1000,
    contexts: CONTEXTS,
    decodeTokens: DECODE,
    machine: {
      os: `${os.type()} ${os.release()}`,
      arch: os.arch(),
      cpu: cpus[0]?.model.trim() ?? 'unknown',
      cpuCount: cpus.length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      chromium: chromiumVersion,
      vkIcd: icd,
    },
    adapters: Object.fromEntries(rows.map((r) => [r.backend, r.adapter])),
    rows,
    dispatches,
    kvModes,
    kernels,
    errors,
  };
  for (const k of [...kvModes, ...(kernels ? [kernels] : [])]) k.run = { date: report.date, commit: report.commit, dirty: report.dirty };
  // Sections this run skipped are carried over from the previous report, each keeping its own run.
  const previous = previousReport();
  if (MODES_ONLY && previous?.rows && previous.date && previous.commit) {
    report.rows = previous.rows;
    report.dispatches = previous.dispatches ?? [];
    report.rowsRun = previous.rowsRun ?? { date: previous.date, commit: previous.commit };
  }
  for (const old of previous?.kvModes ?? []) {
    if (!kvModes.some((k) => k.backend === old.backend)) kvModes.push({ ...old, run: old.run ?? { date: previous?.date ?? '', commit: previous?.commit ?? '' } });
  }
  if (!kernels && previous?.kernels) report.kernels = { ...previous.kernels, run: previous.kernels.run ?? { date: previous.date ?? '', commit: previous.commit ?? '' } };
  report.adapters = Object.fromEntries([...report.rows, ...kvModes].map((r) => [r.backend, r.adapter]));
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'speed.json'), JSON.stringify(report, null, 2) + '\n');
  const md = markdown(report);
  fs.writeFileSync(path.join(OUT_DIR, 'speed.md'), md);
  process.stdout.write(md);
  log(`wrote ${path.relative(ROOT, OUT_DIR)}/speed.json and speed.md in ${report.wallSeconds.toFixed(0)} s`);
  process.exit(errors.length ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
