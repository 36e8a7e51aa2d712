/**
 * Decode speed on a real GPU (`npm run bench:device` packs it; `bash dist-device/run.sh` runs it there).
 * For each real-shape model (bench/device/models/<name>/config.json, random f16 weights from
 * RandomWeightsSource) and each KV mode of BENCH_KV_MODES, Engine.benchmark measures decode at each context
 * (prefill to C − S, then S timed decode steps ending at C), and this prints decode tok/s, ms per step, bytes
 * one step reads (weights + KV) and the % of the bandwidth roofline: (bytes per step / bandwidth) / measured
 * ms per step. One JSON object on stdout (also written to --json FILE after each model), a table on stderr.
 *   node device-speed.mjs --models DIR [--model-list smollm2-135m,...] [--modes full,int8,...]
 *     [--contexts 512,4096] [--decode 32] [--bandwidth-gbs 4800] [--budget-s 240] [--json FILE]
 *     [--tokenizer FILE] [--weights auto,q4,q8] [--quick]
 * --weights: weight storages per model (auto = f16 where the adapter has it; q8 / q4 quantized on load, measured
 *   in the first KV mode only).
 * --quick: smollm2-135m, full mode, context 64, 8 decode steps (a CPU smoke test of the pack).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { BENCH_KV_MODES } from '../../src/engine/benchmark';
import { Engine } from '../../src/engine/engine';
import { parseModelConfig } from '../../src/model/config';
import { RandomWeightsSource } from '../../src/model/random-source';
import type { KvModeSpec, ModelInfo, SpeedRow } from '../../src/worker/api';

/** The packed shapes, smallest first (the order they are measured in). */
export const DEVICE_MODELS = ['smollm2-135m', 'smollm2-360m', 'qwen2.5-0.5b', 'llama-3.2-1b'];

/** H200 HBM3e. */
const DEFAULT_BANDWIDTH_GBS = 4800;

interface Measurement {
  mode: string;
  context: number;
  decodeTokens: number;
  decodeTokensPerSecond: number;
  msPerStep: number;
  prefillTokensPerSecond: number;
  bytesPerStep: { weights: number; kv: number; total: number } | null;
  /** Bytes per step / bandwidth, in ms: the time a step would take at the roofline. */
  rooflineMs: number | null;
  rooflinePercent: number | null;
  dispatchesPerStep: number | null;
  gpuMsPerStep: number | null;
  gpuMsByFamily: Record<string, number>;
  host: SpeedRow['host'] | null;
}

interface ModelResult {
  model: string;
  shape: Record<string, unknown>;
  weightDtype: string | null;
  weightBytes: number | null;
  loadSeconds: number | null;
  measurements: Measurement[];
  errors: Array<{ mode: string; error: string }>;
  skipped: string[];
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const log = (line: string) => process.stderr.write(`${line}\n`);
const finite = (x: number | undefined | null): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

/** A tokenizer.json with only BOS/EOS: enough for Engine.load under the bundle's tokenizer stub. */
function minimalTokenizer(raw: Record<string, unknown>): string {
  const ids = new Set<number>();
  for (const key of ['bos_token_id', 'eos_token_id']) {
    const v = raw[key];
    for (const id of Array.isArray(v) ? v : [v]) if (typeof id === 'number') ids.add(id);
  }
  const added_tokens = [...ids].map((id) => ({ id, content: `<|special_${id}|>`, special: true }));
  return JSON.stringify({ version: '1.0', added_tokens, model: { type: 'WordLevel', vocab: {} } });
}

export function measurementFromRow(mode: string, r: SpeedRow, bandwidthGBs: number): Measurement {
  const msPerStep = r.decodeMs / r.decodeTokens;
  const bytes = r.bytesPerStep ? { weights: r.bytesPerStep.weights, kv: r.bytesPerStep.kv, total: r.bytesPerStep.weights + r.bytesPerStep.kv } : null;
  const rooflineMs = bytes ? (bytes.total / (bandwidthGBs * 1e9)) * 1000 : null;
  return {
    mode,
    context: r.context,
    decodeTokens: r.decodeTokens,
    decodeTokensPerSecond: r.decodeTokensPerSecond,
    msPerStep,
    prefillTokensPerSecond: r.prefillTokensPerSecond,
    bytesPerStep: bytes,
    rooflineMs,
    rooflinePercent: rooflineMs === null ? null : (rooflineMs / msPerStep) * 100,
    dispatchesPerStep: finite(r.dispatchesPerStep),
    gpuMsPerStep: finite(r.gpuMsPerStep),
    gpuMsByFamily: r.gpuMsByFamily ?? {},
    host: r.host ?? null,
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const pct = (x: number | null) => (x === null ? '?' : `${x >= 1 ? x.toFixed(1) : x.toPrecision(2)}%`);

export function formatTable(results: ModelResult[], bandwidthGBs: number): string {
  const head = ['model', 'kv mode', 'ctx', 'decode tok/s', 'ms/step', 'MB/step (w+kv)', `% roofline @${bandwidthGBs} GB/s`, 'dispatches', 'gpu ms/step'];
  const rows: string[][] = [];
  for (const m of results) {
    for (const x of m.measurements) {
      rows.push([
        m.model,
        x.mode,
        String(x.context),
        x.decodeTokensPerSecond.toFixed(1),
        x.msPerStep.toFixed(3),
        x.bytesPerStep ? `${(x.bytesPerStep.total / 1e6).toFixed(1)} (${(x.bytesPerStep.weights / 1e6).toFixed(1)}+${(x.bytesPerStep.kv / 1e6).toFixed(1)})` : '?',
        pct(x.rooflinePercent),
        x.dispatchesPerStep === null ? '?' : String(x.dispatchesPerStep),
        x.gpuMsPerStep === null ? '-' : x.gpuMsPerStep.toFixed(3),
      ]);
    }
    for (const e of m.errors) rows.push([m.model, e.mode, '-', `ERROR: ${e.error.slice(0, 100)}`, '', '', '', '', '']);
    for (const s of m.skipped) rows.push([m.model, s, '-', 'skipped (time budget)', '', '', '', '', '']);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i].startsWith('ERROR') || r[i].startsWith('skipped') ? 0 : r[i].length))));
  const line = (r: string[]) => r.map((c, i) => (i >= 2 && !c.startsWith('ERROR') && !c.startsWith('skipped') ? lpad(c, widths[i]) : pad(c, widths[i]))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main() {
  Object.assign(globalThis, globals);
  const t0 = performance.now();
  const quick = process.argv.includes('--quick');
  const modelsDir = arg('models', path.join(path.dirname(new URL(import.meta.url).pathname), 'models'));
  const modelNames = list(arg('model-list', quick ? 'smollm2-135m' : DEVICE_MODELS.join(',')));
  const labels = list(arg('modes', quick ? 'full' : BENCH_KV_MODES.map((m) => m.label).join(',')));
  const unknown = labels.filter((l) => !BENCH_KV_MODES.some((m) => m.label === l));
  if (unknown.length) throw new Error(`Unknown KV mode label(s) ${unknown.join(', ')}; known: ${BENCH_KV_MODES.map((m) => m.label).join(', ')}.`);
  const allModes = BENCH_KV_MODES.filter((m) => labels.includes(m.label));
  // Weight storages: auto (f16 on a GPU with shader-f16) and on-load q8 / q4 blocks, read in place by the kernels.
  const weightFormats = list(arg('weights', quick ? 'auto' : 'auto,q4,q8')) as Array<'auto' | 'q8' | 'q4'>;
  const badWeights = weightFormats.filter((w) => !['auto', 'q8', 'q4'].includes(w));
  if (badWeights.length) throw new Error(`Unknown --weights ${badWeights.join(', ')}; known: auto, q8, q4.`);
  const contexts = list(arg('contexts', quick ? '64' : '512,4096')).map(Number);
  const decode = Number(arg('decode', quick ? '8' : '32'));
  const bandwidthGBs = Number(arg('bandwidth-gbs', String(DEFAULT_BANDWIDTH_GBS)));
  const budgetS = Number(arg('budget-s', '240'));
  const jsonFile = arg('json', '');
  const tokenizerFile = arg('tokenizer', '');

  // Unquantized timestamps (Dawn rounds them to 2^16 ns by default, against timing attacks in browsers).
  const gpuEntry = create(['disable-dawn-features=timestamp_quantization']) as unknown as GPU;
  const adapter = await gpuEntry.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('No WebGPU adapter: check the Vulkan loader and ICD (VK_ICD_FILENAMES / VK_DRIVER_FILES).');
  const ai = adapter.info;
  const adapterInfo = { vendor: ai.vendor, architecture: ai.architecture, device: ai.device, description: ai.description, features: [...adapter.features].sort() };
  log(`adapter: ${[ai.vendor, ai.architecture, ai.device, ai.description].filter(Boolean).join(' | ')}`);
  log(`features: ${adapterInfo.features.join(', ')}`);
  log(`plan: models ${modelNames.join(', ')}; weights ${weightFormats.join(', ')}; modes ${allModes.map((m) => m.label).join(', ')}; contexts ${contexts.join(', ')}; ${decode} decode steps; bandwidth ${bandwidthGBs} GB/s; budget ${budgetS} s`);

  const engine = new Engine(gpuEntry);
  const results: ModelResult[] = [];
  let engineAdapter: unknown = null;
  const output = () => ({
    backend: 'node-dawn',
    date: new Date().toISOString(),
    host: { hostname: os.hostname(), cpus: os.cpus().length, node: process.version },
    icd: process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES ?? null,
    adapter: adapterInfo,
    engineAdapter,
    bandwidthGBs,
    request: { models: modelNames, weights: weightFormats, modes: allModes.map((m) => m.label), contexts, decodeTokens: decode, budgetS },
    results,
    seconds: (performance.now() - t0) / 1000,
  });
  const save = () => {
    if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(output(), null, 1) + '\n');
  };
  const overBudget = () => (performance.now() - t0) / 1000 > budgetS;

  for (const name of modelNames) for (const weights of weightFormats) {
    // Quantized storages are measured in the first KV mode only (the time budget goes to the modes in f16).
    const modes = weights === 'auto' ? allModes : allModes.slice(0, 1);
    const dir = path.join(modelsDir, name);
    const configText = fs.readFileSync(path.join(dir, 'config.json'), 'utf8');
    const raw = JSON.parse(configText) as Record<string, unknown>;
    const c = parseModelConfig(raw);
    const result: ModelResult = {
      model: weights === 'auto' ? name : `${name} (${weights} on load)`,
      shape: { architecture: c.architecture, layers: c.numLayers, hidden: c.hiddenSize, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, ffn: c.intermediateSize, vocab: c.vocabSize, tied: c.tieEmbeddings },
      weightDtype: null,
      weightBytes: null,
      loadSeconds: null,
      measurements: [],
      errors: [],
      skipped: [],
    };
    results.push(result);
    if (overBudget()) {
      result.skipped.push(...modes.map((m) => m.label));
      log(`${name}: skipped (over the ${budgetS} s budget)`);
      continue;
    }
    const tokPath = [path.join(dir, 'tokenizer.json'), tokenizerFile].find((p) => p && fs.existsSync(p));
    const files = { 'config.json': configText, 'tokenizer.json': tokPath ? fs.readFileSync(tokPath, 'utf8') : minimalTokenizer(raw) };
    const ctx = contexts.filter((x) => x < c.maxPositions);
    const load = async (): Promise<ModelInfo> => {
      const tl = performance.now();
      const info = await engine.load(new RandomWeightsSource(name, files), { prefillChunk: 128, weightDtype: weights });
      result.loadSeconds = (performance.now() - tl) / 1000;
      result.weightDtype = info.weightDtype;
      result.weightBytes = info.weightBytes;
      engineAdapter = info.adapter;
      log(`${name}: loaded ${(info.weightBytes / 1e6).toFixed(0)} MB of random ${info.weightDtype} weights in ${result.loadSeconds.toFixed(1)} s`);
      return info;
    };
    try {
      await load();
    } catch (err) {
      result.errors.push({ mode: 'load', error: String((err as Error)?.message ?? err) });
      log(`${name}: load failed: ${(err as Error)?.stack ?? err}`);
      save();
      continue;
    }
    for (const { label, spec } of modes) {
      if (overBudget()) {
        result.skipped.push(label);
        continue;
      }
      const tm = performance.now();
      try {
        await engine.setKvMode(spec as KvModeSpec);
        const rows = await engine.benchmark(ctx, decode);
        for (const r of rows) {
          const m = measurementFromRow(label, r, bandwidthGBs);
          result.measurements.push(m);
          log(
            `${name} ${label} @${m.context}: ${m.decodeTokensPerSecond.toFixed(1)} tok/s, ${m.msPerStep.toFixed(3)} ms/step, ` +
              `${m.bytesPerStep ? (m.bytesPerStep.total / 1e6).toFixed(1) : '?'} MB/step, ${pct(m.rooflinePercent)} of roofline, ` +
              `prefill ${m.prefillTokensPerSecond.toFixed(0)} tok/s, gpu ${m.gpuMsPerStep?.toFixed(3) ?? '-'} ms/step ${JSON.stringify(Object.fromEntries(Object.entries(m.gpuMsByFamily).map(([k, v]) => [k, +v.toFixed(3)])))}`,
          );
        }
        log(`${name} ${label}: ${((performance.now() - tm) / 1000).toFixed(1)} s`);
      } catch (err) {
        result.errors.push({ mode: label, error: String((err as Error)?.message ?? err) });
        log(`${name} ${label}: failed: ${(err as Error)?.stack ?? err}`);
        // A lost device unloads the model: load it again for the next mode.
        if ((err as Error)?.name === 'DeviceLostError' || !engine.stats().loaded) {
          try {
            await load();
          } catch (e) {
            log(`${name}: reload failed: ${(e as Error)?.message ?? e}`);
            break;
          }
        }
      }
    }
    save();
  }
  await engine.unload();
  save();
  process.stdout.write(JSON.stringify(output()) + '\n');
  log('');
  log(formatTable(results, bandwidthGBs));
  log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  process.exit(results.some((r) => r.errors.length) ? 2 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
