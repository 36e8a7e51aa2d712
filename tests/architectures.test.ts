/** Every supported architecture path (qwen2 bias, qwen3 q/k norm, llama GQA 3 + llama3 RoPE, mistral, dtypes, shards) on the GPU vs the CPU reference. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/model/config';
import { ReferenceModel } from '../src/reference/forward';
import { loadReferenceModel } from '../src/reference/load-node';
import type { LoadProgress } from '../src/worker/api';
import { hubSpec, useScratchHub } from './helpers/hub';
import { randomConfigs, randomModelConfigJson, writeRandomModel, type RandomModelOptions } from './helpers/random-model';

/** 24 ids below the smallest preset vocabulary (128). */
const PROMPT = [1, 17, 42, 99, 3, 64, 5, 77, 8, 120, 11, 31, 100, 2, 55, 127, 0, 90, 33, 71, 12, 6, 88, 45];
/** Prefill is split into these chunks (each at most PREFILL_CHUNK); the rest of PROMPT is decoded token by token. */
const CHUNKS = [7, 9];
const PREFILL_CHUNK = 16;
const TOL = 1e-3;

const LLAMA3_ROPE = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

let counter = 0;
const scratch = useScratchHub('kvtab-arch-');

/** Write a random model, serve it as `random/m<N>`, and return its folder and repo id. */
async function serve(opts: RandomModelOptions): Promise<{ dir: string; repo: string }> {
  const repo = `random/m${counter++}`;
  const dir = path.join(scratch.root, repo);
  await writeRandomModel(dir, opts);
  scratch.hub.setRepo(repo, dir);
  return { dir, repo };
}

/**
 * Load `opts` through the engine over HTTP and compare logits with the CPU reference at every position of
 * PROMPT, twice: one-shot prefill of PREFILL_CHUNK tokens, then CHUNKS-chunked prefill; both continue with
 * token-by-token decode to the end of PROMPT. Returns the worst difference and the reference logits.
 */
async function compareWithReference(label: string, opts: RandomModelOptions, onProgress?: (p: LoadProgress) => void) {
  const { dir, repo } = await serve(opts);
  const ref = await loadReferenceModel(dir);
  const V = ref.config.vocabSize;
  const reference = ref.model.forward(PROMPT);
  const info = await scratch.engine.load(
    hubSpec(scratch.hub, repo),
    { weightDtype: 'f32', kvDtype: 'f32', allLogits: true, prefillChunk: PREFILL_CHUNK },
    onProgress,
  );
  expect(info.architecture).toBe(opts.architecture);
  const model = scratch.engine.model!;
  const rows = (from: number, n: number) => reference.subarray(from * V, (from + n) * V);
  const worst = { oneShot: 0, chunked: 0, decode: 0 };
  for (const chunks of [[PREFILL_CHUNK], CHUNKS]) {
    model.kv.reset();
    let pos = 0;
    for (const size of chunks) {
      const { logits } = await model.forward(PROMPT.slice(pos, pos + size), 'all-logits');
      const key = chunks.length === 1 ? 'oneShot' : 'chunked';
      worst[key] = Math.max(worst[key], maxAbsDiff(logits!, rows(pos, size)));
      pos += size;
    }
    for (; pos < PROMPT.length; pos++) {
      const { logits } = await model.forward([PROMPT[pos]], 'last-logits');
      worst.decode = Math.max(worst.decode, maxAbsDiff(logits!, rows(pos, 1)));
    }
  }
  const max = Math.max(worst.oneShot, worst.chunked, worst.decode);
  console.log(
    `${label}: max |logits diff| one-shot ${worst.oneShot.toExponential(3)}, chunked ${worst.chunked.toExponential(3)}, ` +
      `decode ${worst.decode.toExponential(3)} (${PROMPT.length} positions)`,
  );
  const peak = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expect(peak, 'reference logits are not trivially small').toBeGreaterThan(0.1);
  return { max, reference, dir };
}

describe('GPU forward matches the CPU reference at every position (f32)', () => {
  const cases: [string, RandomModelOptions][] = [
    ['qwen2 q/k/v bias, tied', randomConfigs.qwen2Bias],
    ['qwen3 q/k norm, head_dim 32 != 64/4, tied', randomConfigs.qwen3QkNorm],
    ['llama GQA 3, untied', randomConfigs.llamaGqa3],
    ['mistral MHA, untied', randomConfigs.mistral],
    ['mistral MHA, tied', { ...randomConfigs.mistral, tieEmbeddings: true, seed: 6 }],
    ['qwen2 from F16 safetensors', { ...randomConfigs.qwen2Bias, dtype: 'F16' }],
    ['qwen3 from BF16 safetensors', { ...randomConfigs.qwen3QkNorm, dtype: 'BF16' }],
  ];
  for (const [label, opts] of cases) {
    it(label, async () => {
      const { max } = await compareWithReference(label, opts);
      expect(max).toBeLessThanOrEqual(TOL);
    });
  }

  it('llama GQA 3 with Llama-3 rope_scaling (and the scaling changes the logits)', async () => {
    const opts = { ...randomConfigs.llamaGqa3, ropeScaling: LLAMA3_ROPE };
    const { max, reference, dir } = await compareWithReference('llama GQA 3 + llama3 rope_scaling', opts);
    expect(max).toBeLessThanOrEqual(TOL);
    // The same weights without rope_scaling must give clearly different logits, or this case tests nothing.
    const { tensors } = await loadReferenceModel(dir);
    const unscaled = new ReferenceModel(parseModelConfig(randomModelConfigJson(randomConfigs.llamaGqa3)), tensors);
    expect(maxAbsDiff(unscaled.forward(PROMPT), reference)).toBeGreaterThan(100 * TOL);
  });
});

describe('sharded weights and load progress', () => {
  it('a two-shard model with model.safetensors.index.json loads from both shards and matches', async () => {
    const events: LoadProgress[] = [];
    const opts: RandomModelOptions = { ...randomConfigs.llamaGqa3, sharded: true };
    const { max, dir } = await compareWithReference('llama GQA 3, two shards', opts, (p) => events.push({ ...p }));
    expect(max).toBeLessThanOrEqual(TOL);
    const shards = (await readdir(dir)).filter((f) => /^model-\d{5}-of-00002\.safetensors$/.test(f));
    expect(shards).toHaveLength(2);
    const files = new Set(events.filter((e) => e.phase === 'weights').map((e) => e.file));
    expect(files).toEqual(new Set(shards));
  });

  it('progress: config, tokenizer, then monotonic weight bytes reaching the total, compile, then ready', async () => {
    for (const sharded of [false, true]) {
      const events: LoadProgress[] = [];
      const { dir, repo } = await serve({ ...randomConfigs.mistral, sharded, seed: 9 });
      await scratch.engine.load(hubSpec(scratch.hub, repo), { weightDtype: 'f32', kvDtype: 'f32' }, (p) => events.push({ ...p }));
      const weightFiles = (await readdir(dir)).filter((f) => f.endsWith('.safetensors'));
      let fileBytes = 0;
      for (const f of weightFiles) fileBytes += (await stat(path.join(dir, f))).size;

      const phases = events.map((e) => e.phase);
      expect(phases.slice(0, 2)).toEqual(['config', 'tokenizer']);
      expect(phases.slice(-2)).toEqual(['compile', 'ready']);
      const weights = events.filter((e) => e.phase === 'weights');
      expect(phases.slice(2, -2).every((p) => p === 'weights')).toBe(true);
      expect(weights.length).toBeGreaterThan(0);
      for (let i = 0; i < weights.length; i++) {
        const e = weights[i];
        expect(e.bytesDone).toBeLessThanOrEqual(e.bytesTotal);
        if (i > 0) {
          expect(e.bytesDone).toBeGreaterThanOrEqual(weights[i - 1].bytesDone);
          expect(e.bytesTotal).toBeGreaterThanOrEqual(weights[i - 1].bytesTotal);
        }
      }
      const last = weights.at(-1)!;
      expect(last.bytesDone, `sharded=${sharded}`).toBe(fileBytes);
      expect(last.bytesTotal, `sharded=${sharded}`).toBe(fileBytes);
      const ready = events.at(-1)!;
      expect(ready.bytesDone).toBe(ready.bytesTotal);
      expect(ready.bytesTotal).toBe(scratch.engine.stats().weightBytes);
      console.log(`progress (sharded=${sharded}): ${weights.length} weight events, ${fileBytes} file bytes`);
    }
  });
});
