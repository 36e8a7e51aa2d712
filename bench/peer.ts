/**
 * The peer section of `npm run bench`: kvtab against `@wllama/wllama` (llama.cpp in WebAssembly, a devDependency) on
 * the same weights, prompt and greedy decode, in the same Chromium, interleaved.
 *
 * Each round opens three fresh pages (each in its own browser context), in this order:
 *   - kvtab: the real app page in bench mode (`/?bench=generate&prompt=…&tokens=200&model=local/stories260k&hub=…
 *     &dtype=f32&warmup=…`, src/ui/bench-mode.ts), which loads the HF-layout folder over the local hub and runs the
 *     engine Worker's `generate` (temperature 0, raw prompt: BOS + the prompt's ids);
 *   - wllama GPU: bench/peer/index.html (served here with COOP/COEP next to wllama's ESM build and the GGUF) loads
 *     `stories260k-f32-v3.gguf` with `n_gpu_layers: 99` and runs `createCompletion({ temperature: 0 })`;
 *   - wllama CPU: the same with `n_gpu_layers: 0`.
 * Both sides first run a short warm-up generation of the same prompt (`warmup` tokens, 0 for none) so that shader and
 * pipeline compilation stays out of the measured decode. Load time is not measured.
 *
 * Decode tok/s: kvtab's GenerateResult.decodeTokensPerSecond ((generated − 1) / decode time: the first token comes
 * from the prefill); wllama's timings.predicted_per_second (llama-server's predicted_n / predicted_ms). The ratios
 * kvtab / wllama are taken per round, and their median over the rounds is reported.
 * Writes `<outDir>/peer.json` and `<outDir>/peer.md`. Every request the pages make outside 127.0.0.1 is blocked and
 * reported (wllama must never reach its CDN).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from '@playwright/test';
import type { BenchGeneratePageResult } from '../src/ui/bench-mode';
import type { HubServer } from '../scripts/hub-server';
import { openPageMode, withTimeout } from '../scripts/chromium-app';
import { startPeerServer } from './peer/server';
import { sharedModelsDir } from '../scripts/hub-server';
import { peerMarkdown } from './peer-report';
import { git } from './git';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The golden greedy continuation of "Once upon a time" (shared/models/README.md): 60 ids and their text. */
export const GOLDEN_PROMPT = 'Once upon a time';
export const GOLDEN_PROMPT_IDS = [1, 403, 407, 261, 378];
export const GOLDEN_IDS = [
  432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328,
  432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,
  438, 310,
];
export const GOLDEN_TEXT =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily';

export interface PeerOptions {
  rounds: number;
  /** Greedy tokens to generate (max). */
  tokens: number;
  /** Warm-up tokens generated before the measured run, on both sides (0: none). */
  warmup: number;
  outDir: string;
  /** Shared models folder (stories260k/ with the HF files and the GGUF). */
  modelsDir?: string;
  log?: (msg: string) => void;
  /** Per page, milliseconds. */
  timeoutMs?: number;
}

export type PeerEngine = 'kvtab' | 'wllama-gpu' | 'wllama-cpu';

interface WllamaPageResult {
  libllama: string;
  supportWebGPU: boolean;
  crossOriginIsolated: boolean;
  adapter: { vendor: string; architecture: string; shaderF16: boolean } | null;
  loadMs: number;
  text: string;
  finishReason: string | null;
  usage: { prompt_tokens?: number; completion_tokens?: number } | null;
  timings: { prompt_n: number; prompt_ms: number; predicted_n: number; predicted_ms: number; predicted_per_second: number } | null;
  warmup: { text: string } | null;
  context: { n_ctx: number; n_vocab: number; n_layer: number; token_bos: number; token_eos: number; add_bos_token: boolean };
  logs: string[];
}

/** What a wllama page reported about its setup (from the last successful run of that mode). */
export interface WllamaPageFacts {
  crossOriginIsolated: boolean;
  supportWebGPU: boolean;
  adapter: { vendor: string; architecture: string; shaderF16: boolean } | null;
  addBos: boolean;
  /** llama.cpp's "model buffer size" lines: the buffer type names the device that holds the weights. */
  modelBuffers: string[];
  offloaded: boolean;
  logs: string[];
}

/** From wllama's load log: did the weights land on a non-CPU device? */
function offloadedToGpu(logs: string[]): boolean {
  const layers = logs.some((l) => /offloaded [1-9]\d*\/\d+ layers to GPU/.test(l));
  const buffers = logs.filter((l) => /model buffer size/.test(l));
  return layers || buffers.some((l) => !/\bCPU(_\w+)?\s+model buffer/.test(l));
}

/** One engine's run in one round. */
export interface PeerSample {
  round: number;
  engine: PeerEngine;
  ok: boolean;
  error?: string;
  decodeTokensPerSecond: number;
  generatedTokens: number;
  promptTokens: number;
  finishReason: string | null;
  decodeMs: number;
  prefillMs: number;
  loadMs: number;
  text: string;
  /** kvtab only: the generated ids. */
  tokenIds?: number[];
}

export interface PeerReport {
  date: string;
  commit: string;
  dirty: boolean;
  chromium: string;
  kvtabAdapter: string;
  kvtabWeights: string;
  libllama: string | null;
  wllamaVersion: string;
  /** wllama page facts from the last successful run of each mode (crossOriginIsolated, WebGPU support, log lines). */
  wllamaPage: Partial<Record<'gpu' | 'cpu', WllamaPageFacts>>;
  /**
   * Whether wllama's `n_gpu_layers: 99` run really put the model on a WebGPU device (from its load log: a non-CPU
   * model buffer or "offloaded N/M layers to GPU"). False means that run used llama.cpp's CPU path too.
   */
  wllama_gpu_offloaded: boolean;
  workload: {
    kvtabModel: string;
    gguf: string;
    prompt: string;
    maxNewTokens: number;
    warmupTokens: number;
    temperature: 0;
    wllamaLoad: { n_ctx: number; n_threads: number; n_gpu_layers: { gpu: number; cpu: number } };
  };
  rounds: number;
  samples: PeerSample[];
  /** Median decode tok/s over the successful rounds. */
  median: Record<PeerEngine, number>;
  /** Per-round kvtab / wllama decode tok/s, then their median. */
  ratiosPerRound: { gpu: number[]; cpu: number[] };
  ratio_vs_wllama_gpu: number;
  ratio_vs_wllama_cpu: number;
  /** The generated texts of round 1 (every round's text is in samples). */
  texts: Record<PeerEngine, string>;
  golden: {
    compared: string;
    goldenText: string;
    kvtab: boolean;
    kvtabIds: boolean;
    wllamaGpu: boolean;
    wllamaCpu: boolean;
    /** Every round of every engine starts with the golden text. */
    allRounds: boolean;
    /** kvtab's full text equals wllama GPU's / CPU's (round 1, after the same leading-space normalization). */
    kvtabEqualsWllamaGpu: boolean;
    kvtabEqualsWllamaCpu: boolean;
    wllamaGpuEqualsCpu: boolean;
    /** Every round of an engine produced the same text. */
    stableAcrossRounds: boolean;
  };
  blockedRequests: string[];
  errors: string[];
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Texts compared with one leading space dropped (SentencePiece detokenizers differ on it). */
const norm = (text: string) => text.replace(/^ /, '');
export const isGolden = (text: string) => norm(text).startsWith(norm(GOLDEN_TEXT));

/** A fresh context whose pages may only reach 127.0.0.1 (blocked URLs are collected). */
async function isolatedContext(browser: Browser, blocked: string[]): Promise<BrowserContext> {
  const context = await browser.newContext();
  await context.route('**/*', (route) => {
    const url = route.request().url();
    let host = '';
    try {
      host = new URL(url).hostname;
    } catch {
      /* not a URL with a host */
    }
    if (host === '127.0.0.1' || host === 'localhost') return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  return context;
}

/** Run the peer comparison in `browser` and write peer.json / peer.md. */
export async function runPeerBench(
  app: { browser: Browser; appUrl: string; hub: HubServer },
  options: PeerOptions,
): Promise<PeerReport> {
  const log = options.log ?? ((msg: string) => process.stderr.write(`[peer] ${msg}\n`));
  const modelsDir = options.modelsDir ?? sharedModelsDir();
  const ggufPath = path.join(modelsDir, 'stories260k', 'stories260k-f32-v3.gguf');
  if (!fs.existsSync(ggufPath)) throw new Error(`Missing ${ggufPath}.`);
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  const { browser, appUrl, hub } = app;
  const blocked: string[] = [];
  const errors: string[] = [];
  const samples: PeerSample[] = [];
  let kvtabAdapter = '';
  let kvtabWeights = '';
  let libllama: string | null = null;
  const wllamaPage: PeerReport['wllamaPage'] = {};
  const N_CTX = 512;
  const N_THREADS = 1;
  const peer = await startPeerServer(modelsDir);
  const wllamaVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/@wllama/wllama/package.json'), 'utf8')) as { version: string }).version;

  const pageLog = (engine: PeerEngine) => (text: string) => {
    if (/^\[(bench|peer)\]/.test(text)) process.stderr.write(`  [${engine}] ${text}\n`);
  };

  async function runKvtab(round: number): Promise<PeerSample> {
    const context = await isolatedContext(browser, blocked);
    try {
      const page = await context.newPage();
      page.on('console', (m) => pageLog('kvtab')(m.text()));
      page.on('pageerror', (e) => process.stderr.write(`  [kvtab page error] ${e.message}\n`));
      const query = new URLSearchParams({
        bench: 'generate',
        prompt: GOLDEN_PROMPT,
        tokens: String(options.tokens),
        warmup: String(options.warmup),
        model: 'local/stories260k',
        hub: hub.baseUrl,
        dtype: 'f32',
      });
      const out = await openPageMode<BenchGeneratePageResult>(page, `${appUrl}?${query}`, '#bench-result', 'done', timeoutMs);
      kvtabAdapter = out.info.adapter.description;
      kvtabWeights = out.info.weightDtype;
      const r = out.result;
      return {
        round, engine: 'kvtab', ok: true,
        decodeTokensPerSecond: r.decodeTokensPerSecond,
        generatedTokens: r.tokenIds.length,
        promptTokens: r.promptTokens,
        finishReason: r.finishReason,
        decodeMs: r.decodeMs,
        prefillMs: r.prefillMs,
        loadMs: out.loadMs,
        text: r.text,
        tokenIds: r.tokenIds,
      };
    } finally {
      await context.close();
    }
  }

  async function runWllama(round: number, engine: 'wllama-gpu' | 'wllama-cpu'): Promise<PeerSample> {
    const context = await isolatedContext(browser, blocked);
    try {
      const page = await context.newPage();
      page.on('console', (m) => pageLog(engine)(m.text()));
      page.on('pageerror', (e) => process.stderr.write(`  [${engine} page error] ${e.message}\n`));
      await page.goto(`${peer.baseUrl}/index.html`);
      await page.waitForFunction(() => (window as unknown as { kvtabPeerReady?: boolean }).kvtabPeerReady === true, undefined, { timeout: 60_000 });
      const args = {
        modelUrl: `${peer.baseUrl}/models/stories260k/stories260k-f32-v3.gguf`,
        prompt: GOLDEN_PROMPT,
        maxTokens: options.tokens,
        warmupTokens: options.warmup,
        nGpuLayers: engine === 'wllama-gpu' ? 99 : 0,
        nCtx: N_CTX,
        nThreads: N_THREADS,
      };
      const out = await withTimeout(
        page.evaluate((a) => (window as unknown as { kvtabPeerRun: (o: typeof a) => Promise<WllamaPageResult> }).kvtabPeerRun(a), args),
        timeoutMs,
        engine,
      );
      libllama = out.libllama;
      const offloaded = offloadedToGpu(out.logs);
      wllamaPage[engine === 'wllama-gpu' ? 'gpu' : 'cpu'] = {
        crossOriginIsolated: out.crossOriginIsolated,
        supportWebGPU: out.supportWebGPU,
        adapter: out.adapter,
        addBos: out.context.add_bos_token,
        modelBuffers: out.logs.filter((l) => /model buffer size/.test(l)),
        offloaded,
        logs: out.logs.filter((l) => !/llama_model_loader: - (kv|tensor)|print_info:/.test(l)).slice(0, 40),
      };
      if (engine === 'wllama-gpu' && !offloaded) log(`round ${round}: wllama n_gpu_layers 99 did not offload (no WebGPU device in llama.cpp): it ran on the CPU`);
      const t = out.timings;
      if (!t) throw new Error('wllama returned no timings.');
      const tps = t.predicted_per_second > 0 ? t.predicted_per_second : (t.predicted_n * 1000) / t.predicted_ms;
      return {
        round, engine, ok: true,
        decodeTokensPerSecond: tps,
        generatedTokens: t.predicted_n,
        promptTokens: t.prompt_n,
        finishReason: out.finishReason,
        decodeMs: t.predicted_ms,
        prefillMs: t.prompt_ms,
        loadMs: out.loadMs,
        text: out.text,
      };
    } finally {
      await context.close();
    }
  }

  try {
    for (let round = 1; round <= options.rounds; round++) {
      for (const engine of ['kvtab', 'wllama-gpu', 'wllama-cpu'] as const) {
        const t0 = performance.now();
        log(`round ${round}/${options.rounds}: ${engine}`);
        let sample: PeerSample;
        try {
          sample = engine === 'kvtab' ? await runKvtab(round) : await runWllama(round, engine);
          log(
            `round ${round}: ${engine} ${sample.decodeTokensPerSecond.toFixed(1)} tok/s, ${sample.generatedTokens} tokens (${sample.finishReason}), ` +
              `golden ${isGolden(sample.text)}, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
          );
        } catch (err) {
          const message = (err as Error).message;
          errors.push(`peer round ${round} ${engine}: ${message}`);
          log(`round ${round}: ${engine} FAILED: ${message}`);
          sample = { round, engine, ok: false, error: message, decodeTokensPerSecond: NaN, generatedTokens: 0, promptTokens: 0, finishReason: null, decodeMs: NaN, prefillMs: NaN, loadMs: NaN, text: '' };
        }
        samples.push(sample);
      }
    }
  } finally {
    await peer.close();
  }

  const ok = samples.filter((s) => s.ok);
  const of = (engine: PeerEngine) => ok.filter((s) => s.engine === engine);
  const ratios = (engine: 'wllama-gpu' | 'wllama-cpu') =>
    Array.from({ length: options.rounds }, (_, i) => {
      const k = of('kvtab').find((s) => s.round === i + 1);
      const w = of(engine).find((s) => s.round === i + 1);
      return k && w ? k.decodeTokensPerSecond / w.decodeTokensPerSecond : NaN;
    }).filter((x) => Number.isFinite(x));
  const first = (engine: PeerEngine) => of(engine)[0]?.text ?? '';
  const texts: Record<PeerEngine, string> = { kvtab: first('kvtab'), 'wllama-gpu': first('wllama-gpu'), 'wllama-cpu': first('wllama-cpu') };
  const engines: PeerEngine[] = ['kvtab', 'wllama-gpu', 'wllama-cpu'];
  const kvtabIdsGolden = of('kvtab').length > 0 && of('kvtab').every((s) => GOLDEN_IDS.every((id, i) => s.tokenIds?.[i] === id));
  const gpuRatios = ratios('wllama-gpu');
  const cpuRatios = ratios('wllama-cpu');
  const report: PeerReport = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: git(['status', '--porcelain']) !== '',
    chromium: browser.version(),
    kvtabAdapter,
    kvtabWeights,
    libllama,
    wllamaVersion,
    wllamaPage,
    wllama_gpu_offloaded: wllamaPage.gpu?.offloaded ?? false,
    workload: {
      kvtabModel: 'local/stories260k (HF layout: model.safetensors, tokenizer.json)',
      gguf: 'stories260k/stories260k-f32-v3.gguf',
      prompt: GOLDEN_PROMPT,
      maxNewTokens: options.tokens,
      warmupTokens: options.warmup,
      temperature: 0,
      wllamaLoad: { n_ctx: N_CTX, n_threads: N_THREADS, n_gpu_layers: { gpu: 99, cpu: 0 } },
    },
    rounds: options.rounds,
    samples,
    median: Object.fromEntries(engines.map((e) => [e, median(of(e).map((s) => s.decodeTokensPerSecond))])) as Record<PeerEngine, number>,
    ratiosPerRound: { gpu: gpuRatios, cpu: cpuRatios },
    ratio_vs_wllama_gpu: median(gpuRatios),
    ratio_vs_wllama_cpu: median(cpuRatios),
    texts,
    golden: {
      compared:
        `each generated text (the continuation only, without the prompt), with one leading space dropped from both sides, ` +
        `starts with the golden ${GOLDEN_IDS.length}-token text of shared/models/README.md; kvtab's first ${GOLDEN_IDS.length} ids equal the golden ids`,
      goldenText: GOLDEN_TEXT,
      kvtab: of('kvtab').length > 0 && isGolden(texts.kvtab),
      kvtabIds: kvtabIdsGolden,
      wllamaGpu: of('wllama-gpu').length > 0 && isGolden(texts['wllama-gpu']),
      wllamaCpu: of('wllama-cpu').length > 0 && isGolden(texts['wllama-cpu']),
      allRounds: samples.every((s) => s.ok && isGolden(s.text)),
      kvtabEqualsWllamaGpu: of('kvtab').length > 0 && norm(texts.kvtab) === norm(texts['wllama-gpu']),
      kvtabEqualsWllamaCpu: of('kvtab').length > 0 && norm(texts.kvtab) === norm(texts['wllama-cpu']),
      wllamaGpuEqualsCpu: of('wllama-gpu').length > 0 && texts['wllama-gpu'] === texts['wllama-cpu'],
      stableAcrossRounds: engines.every((e) => of(e).every((s) => s.text === texts[e])),
    },
    blockedRequests: [...new Set(blocked)],
    errors,
  };
  if (report.blockedRequests.length) errors.push(`blocked requests outside 127.0.0.1: ${report.blockedRequests.join(', ')}`);
  for (const [name, okay] of Object.entries({ kvtab: report.golden.kvtab, 'wllama-gpu': report.golden.wllamaGpu, 'wllama-cpu': report.golden.wllamaCpu })) {
    if (!okay) errors.push(`peer: the ${name} text is not the golden continuation`);
  }
  fs.mkdirSync(options.outDir, { recursive: true });
  fs.writeFileSync(path.join(options.outDir, 'peer.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(options.outDir, 'peer.md'), peerMarkdown(report));
  log(`wrote ${path.relative(ROOT, options.outDir) || '.'}/peer.json and peer.md`);
  return report;
}
