/**
 * Speed benchmark in Node through Dawn (lavapipe here, Vulkan on a real GPU machine).
 * Real stories260k and byte-llama-12l weights over the local hub, plus SmolLM2-135M shapes with random
 * weights. Then the per-KV-mode section on byte-llama-12l: decode tok/s and attention GPU time of every
 * mode in BENCH_KV_MODES (src/engine/benchmark.ts). Prints one JSON object on stdout. Built by vite
 * (WGSL ?raw imports) into dist-bench/.
 *   node dist-bench/node-speed.js [--models DIR] [--contexts 64,256,512] [--decode 16] [--quick]
 *     [--modes-only | --no-modes] [--modes full,int8,...] [--mode-contexts 128,512,2048] [--mode-decode 16]
 *     [--repeats 3] [--mode-timing auto|cpu-repeat|none]
 */
import fs from 'node:fs';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { defaultRepos, sharedModelsDir, startHubServer } from '../scripts/hub-server';
import { BENCH_KV_MODES } from '../src/engine/benchmark';
import { Engine } from '../src/engine/engine';
import { RandomWeightsSource } from '../src/model/random-source';
import { ensureGguf, ggufFileName } from '../scripts/gguf-models';
import type { KvModeBenchRequest, KvModeBenchResult, LoadOptions, SpeedRow } from '../src/worker/api';

/** The model of the per-KV-mode section (max 2048 positions). */
const MODE_MODEL = 'byte-llama-12l';

interface Case {
  name: string;
  contexts: number[];
  load: (engine: Engine) => Promise<unknown>;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  Object.assign(globalThis, globals);
  const modelsDir = arg('models', sharedModelsDir());
  const contexts = arg('contexts', '64,256,512').split(',').map(Number);
  const decode = Number(arg('decode', '16'));
  const smolContexts = arg('smol-contexts', contexts.join(',')).split(',').map(Number);
  const options: LoadOptions = { prefillChunk: 128 };
  const modesOnly = process.argv.includes('--modes-only');
  const hub = await startHubServer({ repos: defaultRepos(modelsDir) });
  const smolDir = path.join(modelsDir, 'smollm2-135m-shape');
  const cases: Case[] = [
    { name: 'stories260k', contexts, load: (e) => e.load({ kind: 'hub', repo: 'local/stories260k', baseUrl: hub.baseUrl }, options) },
  ];
  if (fs.existsSync(path.join(modelsDir, 'byte-llama-12l'))) {
    cases.push({ name: 'byte-llama-12l', contexts, load: (e) => e.load({ kind: 'hub', repo: 'local/byte-llama-12l', baseUrl: hub.baseUrl }, options) });
    if (!process.argv.includes('--no-weight-formats')) {
      for (const q of ['q8', 'q4'] as const) {
        cases.push({ name: `byte-llama-12l (${q} on load)`, contexts, load: (e) => e.load({ kind: 'hub', repo: 'local/byte-llama-12l', baseUrl: hub.baseUrl }, { ...options, weightDtype: q }) });
      }
    }
  }
  if (fs.existsSync(smolDir) && !process.argv.includes('--quick')) {
    const files = {
      'config.json': fs.readFileSync(path.join(smolDir, 'config.json'), 'utf8'),
      'tokenizer.json': fs.readFileSync(path.join(smolDir, 'tokenizer.json'), 'utf8'),
    };
    cases.push({ name: 'smollm2-135m-shape (random f16 weights)', contexts: smolContexts, load: (e) => e.load(new RandomWeightsSource('SmolLM2-135M', files), options) });
    if (!process.argv.includes('--no-weight-formats')) {
      // The same shapes stored as blocks: quantized on load from the random f16 weights, and GGUF files as llama.cpp lays them out.
      for (const q of ['q8', 'q4'] as const) {
        cases.push({ name: `smollm2-135m-shape (random weights, ${q} on load)`, contexts: smolContexts, load: (e) => e.load(new RandomWeightsSource('SmolLM2-135M', files), { ...options, weightDtype: q }) });
      }
      const ggufDir = path.resolve('.cache/gguf');
      for (const kind of ['Q8_0', 'Q4_K_M'] as const) {
        cases.push({
          name: `smollm2-135m-shape (random weights, GGUF ${kind})`,
          contexts: smolContexts,
          load: async (e) => {
            await ensureGguf(ggufDir, 'smollm2-135m-shape', kind, modelsDir);
            hub.setRepo('local/smollm2-135m-shape-gguf', path.join(ggufDir, 'smollm2-135m-shape'));
            return e.load({ kind: 'hub', repo: 'local/smollm2-135m-shape-gguf', baseUrl: hub.baseUrl, file: ggufFileName('smollm2-135m-shape', kind) }, options);
          },
        });
      }
    }
  }
  // Unquantized timestamps (Dawn rounds them to 2^16 ns by default, against timing attacks in browsers).
  const engine = new Engine(create(['disable-dawn-features=timestamp_quantization']) as unknown as GPU);
  const results: Array<{ model: string; weightDtype: string; weightBytes: number; adapter: unknown; rows: SpeedRow[]; dispatches: Array<{ kvMode: string; dispatchesPerStep: number }>; layers: number }> = [];
  for (const c of modesOnly ? [] : cases) {
    const info = (await c.load(engine)) as { weightDtype: string; weightBytes: number; adapter: unknown };
    const rows = await engine.benchmark(c.contexts, decode);
    // Dispatches of one decode step in every KV mode, at a 512-token cache (plans recorded, nothing run).
    const dispatches = await engine.dispatchCounts(BENCH_KV_MODES, 512);
    results.push({ model: c.name, weightDtype: info.weightDtype, weightBytes: info.weightBytes, adapter: info.adapter, rows, dispatches, layers: engine.model?.config.numLayers ?? 0 });
    process.stderr.write(`${c.name}: ${rows.map((r) => `${r.context}: ${r.prefillTokensPerSecond.toFixed(1)}/${r.decodeTokensPerSecond.toFixed(1)}`).join('  ')}\n`);
    for (const r of rows) process.stderr.write(`  @${r.context} profile: ${JSON.stringify({ dispatches: r.dispatchesPerStep, gpuMs: r.gpuMsPerStep, families: r.gpuMsByFamily, host: r.host, bytes: r.bytesPerStep })}\n`);
  }
  let kvModes: { model: string; weightDtype: string; adapter: unknown; request: KvModeBenchRequest; result: KvModeBenchResult } | null = null;
  if (!process.argv.includes('--no-modes') && fs.existsSync(path.join(modelsDir, MODE_MODEL))) {
    const labels = arg('modes', BENCH_KV_MODES.map((m) => m.label).join(',')).split(',');
    const unknown = labels.filter((l) => !BENCH_KV_MODES.some((m) => m.label === l));
    if (unknown.length) throw new Error(`Unknown KV mode label(s) ${unknown.join(', ')}; known: ${BENCH_KV_MODES.map((m) => m.label).join(', ')}.`);
    const request: KvModeBenchRequest = {
      modes: BENCH_KV_MODES.filter((m) => labels.includes(m.label)),
      contexts: arg('mode-contexts', '128,512,2048').split(',').map(Number),
      decodeTokens: Number(arg('mode-decode', '16')),
      repeats: Number(arg('repeats', '3')),
      timing: arg('mode-timing', 'auto') as KvModeBenchRequest['timing'],
    };
    const info = await engine.load({ kind: 'hub', repo: `local/${MODE_MODEL}`, baseUrl: hub.baseUrl }, options);
    const t0 = performance.now();
    const result = await engine.benchmarkKvModes(request);
    process.stderr.write(`${MODE_MODEL} KV modes: ${result.samples.length} samples (${result.timing}) in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    kvModes = { model: MODE_MODEL, weightDtype: info.weightDtype, adapter: info.adapter, request, result };
  }
  await engine.unload();
  await hub.close();
  process.stdout.write(JSON.stringify({ backend: 'node-dawn', icd: process.env.VK_ICD_FILENAMES ?? null, results, kvModes }) + '\n');
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
