/**
 * Benchmark mode of the page, used by `npm run bench` (bench/run.ts drives it with Playwright).
 * Opened as `/?bench=64,256,512&decode=16&model=local/stories260k&hub=<base>[&dtype=f32][&chunk=128]`:
 * loads the model through the engine worker, runs the worker's `benchmark`, and writes one JSON object
 * into `<pre id="bench-result" data-status="done|error">`. DOM only; every GPU call stays in the worker.
 * Per-KV-mode section: add `&kvmodes=full,int8,...` (labels of BENCH_KV_MODES) with `&kvcontexts=512`,
 * `&kvdecode=16`, `&rounds=1`; `bench=modes` skips the plain speed rows.
 * Generation (the peer comparison, bench/peer.ts): `/?bench=generate&prompt=Once%20upon%20a%20time&tokens=200
 * &model=local/stories260k&hub=<base>[&dtype=f32][&warmup=16]` loads the model, optionally runs a short warm-up
 * generation of `warmup` tokens, then one greedy plain continuation of the raw prompt (BOS + prompt ids, no chat
 * template) through the worker's `generate`, and publishes a {@link BenchGeneratePageResult}.
 */
import type { EngineClient } from '../worker/client';
import type { GenerateResult, KvModeBenchRequest, KvModeBenchResult, LoadOptions, ModelInfo, SpeedRow } from '../worker/api';
import { DEFAULT_HUB_URL } from '../model/source';
import { BENCH_KV_MODES } from '../engine/benchmark';

/** What the bench page reports on success. */
export interface BenchPageResult {
  model: string;
  info: ModelInfo;
  loadMs: number;
  benchMs: number;
  rows: SpeedRow[];
  /** The per-KV-mode section, when `kvmodes` was given. */
  kvModes?: { request: KvModeBenchRequest; result: KvModeBenchResult; ms: number };
  userAgent: string;
}

/** What the generation bench (`bench=generate`) reports on success. */
export interface BenchGeneratePageResult {
  model: string;
  info: ModelInfo;
  loadMs: number;
  prompt: string;
  maxNewTokens: number;
  /** Tokens of the warm-up generation run before the measured one (0: none). */
  warmupTokens: number;
  /** The measured greedy generation (temperature 0, EOS stops it). */
  result: GenerateResult;
  userAgent: string;
}

/** Load the page's `model` from its `hub` (defaults: stories260k, the public hub) and time it. */
async function loadBenchModel(client: EngineClient, query: URLSearchParams, say: (text: string) => void): Promise<{ model: string; info: ModelInfo; loadMs: number }> {
  const model = query.get('model') ?? 'local/stories260k';
  const baseUrl = query.get('hub') ?? DEFAULT_HUB_URL;
  say(`Loading ${model} from ${baseUrl}…`);
  const t0 = performance.now();
  const info = await client.api.load({ kind: 'hub', repo: model, baseUrl }, loadOptions(query));
  return { model, info, loadMs: performance.now() - t0 };
}

/** Whether the page was opened in benchmark mode. */
export function isBenchMode(query: URLSearchParams): boolean {
  return query.has('bench');
}

function positiveInts(text: string, what: string): number[] {
  const values = text.split(',').map((s) => Number(s.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 2)) {
    throw new Error(`Bad ${what} "${text}": expected comma-separated integers of 2 or more.`);
  }
  return values;
}

function kvModeRequest(query: URLSearchParams): KvModeBenchRequest | null {
  const labels = query.get('kvmodes');
  if (!labels) return null;
  const modes = labels.split(',').map((label) => {
    const found = BENCH_KV_MODES.find((m) => m.label === label.trim());
    if (!found) throw new Error(`Unknown KV mode "${label}"; known: ${BENCH_KV_MODES.map((m) => m.label).join(', ')}.`);
    return found;
  });
  return {
    modes,
    contexts: positiveInts(query.get('kvcontexts') ?? '512', 'KV-mode context list'),
    decodeTokens: Number(query.get('kvdecode') ?? 16),
    repeats: Number(query.get('rounds') ?? 1),
  };
}

function loadOptions(query: URLSearchParams): LoadOptions {
  const options: LoadOptions = { prefillChunk: Number(query.get('chunk') ?? 128) };
  const dtype = query.get('dtype');
  if (dtype === 'f32' || dtype === 'f16' || dtype === 'auto' || dtype === 'q8' || dtype === 'q4') options.weightDtype = dtype;
  return options;
}

/** Run the benchmark the query describes and publish the result (or the error) in the page. */
export async function runBenchMode(root: HTMLElement, client: EngineClient, query: URLSearchParams): Promise<void> {
  const status = document.createElement('p');
  const result = document.createElement('pre');
  result.id = 'bench-result';
  root.append(status, result);
  const say = (text: string) => {
    status.textContent = text;
    console.log(`[bench] ${text}`);
  };
  if (query.get('bench') === 'generate') return runGenerateBench(result, say, client, query);
  try {
    const contexts = query.get('bench') === 'modes' ? [] : positiveInts(query.get('bench') ?? '', 'context list');
    const kvRequest = kvModeRequest(query);
    const decode = Number(query.get('decode') ?? 16);
    const { model, info, loadMs } = await loadBenchModel(client, query, say);
    say(`Loaded ${info.label} (${info.weightDtype} on ${info.adapter.description}); measuring ${contexts.join(', ')} tokens…`);
    const t1 = performance.now();
    const rows = contexts.length ? await client.api.benchmark(contexts, decode) : [];
    const benchMs = performance.now() - t1;
    let kvModes: BenchPageResult['kvModes'];
    if (kvRequest) {
      say(`Measuring KV modes ${kvRequest.modes.map((m) => m.label).join(', ')} at ${kvRequest.contexts.join(', ')} tokens…`);
      const t2 = performance.now();
      const result = await client.api.benchmarkKvModes(kvRequest);
      kvModes = { request: kvRequest, result, ms: performance.now() - t2 };
    }
    await client.api.unload();
    const out: BenchPageResult = { model, info, loadMs, benchMs, rows, kvModes, userAgent: navigator.userAgent };
    result.textContent = JSON.stringify(out, null, 2);
    result.dataset.status = 'done';
    say(`Done in ${((loadMs + benchMs) / 1000).toFixed(1)} s.`);
  } catch (err) {
    const e = err as Error;
    result.textContent = JSON.stringify({ error: `${e.name ?? 'Error'}: ${e.message ?? String(err)}` });
    result.dataset.status = 'error';
    say('Failed.');
  }
}

function publishError(result: HTMLElement, err: unknown): void {
  const e = err as Error;
  result.textContent = JSON.stringify({ error: `${e.name ?? 'Error'}: ${e.message ?? String(err)}` });
  result.dataset.status = 'error';
}

/** `bench=generate`: load, warm up, one greedy plain continuation of the raw prompt; load time is not part of the speed. */
async function runGenerateBench(result: HTMLElement, say: (text: string) => void, client: EngineClient, query: URLSearchParams): Promise<void> {
  try {
    const prompt = query.get('prompt') ?? 'Once upon a time';
    const maxNewTokens = Number(query.get('tokens') ?? 200);
    const warmupTokens = Number(query.get('warmup') ?? 0);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`Bad tokens "${query.get('tokens')}".`);
    if (!Number.isInteger(warmupTokens) || warmupTokens < 0) throw new Error(`Bad warmup "${query.get('warmup')}".`);
    const { model, info, loadMs } = await loadBenchModel(client, query, say);
    // A plain string is a raw continuation (tokenizer.encodeText: BOS + the prompt's ids), not a chat turn.
    if (warmupTokens > 0) {
      say(`Warm-up: ${warmupTokens} tokens…`);
      await client.api.generate(prompt, { maxNewTokens: warmupTokens, temperature: 0 });
    }
    say(`Generating ${maxNewTokens} greedy tokens after "${prompt}" on ${info.adapter.description}…`);
    const gen = await client.api.generate(prompt, { maxNewTokens, temperature: 0 });
    await client.api.unload();
    const out: BenchGeneratePageResult = { model, info, loadMs, prompt, maxNewTokens, warmupTokens, result: gen, userAgent: navigator.userAgent };
    result.textContent = JSON.stringify(out, null, 2);
    result.dataset.status = 'done';
    say(`Done: ${gen.tokenIds.length} tokens at ${gen.decodeTokensPerSecond.toFixed(1)} tok/s.`);
  } catch (err) {
    publishError(result, err);
    say('Failed.');
  }
}
