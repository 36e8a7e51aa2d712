/** Random-weight model folders: every preset loads into the reference, runs, and sharded/dtype variants agree. */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../src/errors';
import { loadReferenceModel } from '../src/reference/load-node';
import { randomConfigs, writeRandomModel, type RandomModelOptions } from './helpers/random-model';

let root: string;
let counter = 0;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'kvtab-random-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function make(opts: RandomModelOptions): Promise<string> {
  const dir = path.join(root, `m${counter++}`);
  await writeRandomModel(dir, opts);
  return dir;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const TOKENS = [1, 17, 42, 99, 3, 64, 5, 77, 8, 120, 11, 31];

describe.each(Object.entries(randomConfigs))('preset %s', (_name, preset) => {
  it('loads, gives finite O(1)-ish logits, and incremental == one-shot', async () => {
    const { config, model } = await loadReferenceModel(await make(preset));
    expect(config.architecture).toBe(preset.architecture);
    const V = config.vocabSize;
    const oneShot = model.forward(TOKENS);
    expect(oneShot.length).toBe(TOKENS.length * V);
    expect(oneShot.every(Number.isFinite)).toBe(true);
    const peak = oneShot.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(peak).toBeGreaterThan(0.1);
    expect(peak).toBeLessThan(100);
    model.reset();
    let worst = 0;
    TOKENS.forEach((id, t) => {
      worst = Math.max(worst, maxAbsDiff(model.forward([id]), oneShot.subarray(t * V, (t + 1) * V)));
    });
    expect(worst).toBeLessThanOrEqual(1e-5);
  });
});

describe('preset features reach the config', () => {
  it('qwen2 has q/k/v biases, and they matter', async () => {
    const { config, model, tensors } = await loadReferenceModel(await make(randomConfigs.qwen2Bias));
    expect(config.qkvBias).toBe(true);
    expect(config.tieEmbeddings).toBe(true);
    expect(tensors.has('lm_head.weight')).toBe(false);
    const withBias = model.forward(TOKENS);
    for (const [name, t] of tensors) if (/_proj\.bias$/.test(name)) t.fill(0);
    model.reset();
    expect(maxAbsDiff(model.forward(TOKENS), withBias)).toBeGreaterThan(1e-3);
  });

  it('qwen3 has q/k norms and head_dim 32 != hidden / heads', async () => {
    const { config, tensors } = await loadReferenceModel(await make(randomConfigs.qwen3QkNorm));
    expect(config.qkNorm).toBe(true);
    expect(config.headDim).toBe(32);
    expect(config.hiddenSize / config.numHeads).toBe(16);
    expect(tensors.get('model.layers.1.self_attn.q_norm.weight')!.length).toBe(32);
    expect(tensors.get('model.layers.0.self_attn.q_proj.weight')!.length).toBe(4 * 32 * 64);
  });

  it('llama GQA ratio 3', async () => {
    const { config } = await loadReferenceModel(await make(randomConfigs.llamaGqa3));
    expect(config.numHeads / config.numKvHeads).toBe(3);
    expect(config.tieEmbeddings).toBe(false);
  });

  it('rope_scaling is written through to the config', async () => {
    const ropeScaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const { config, model } = await loadReferenceModel(await make({ ...randomConfigs.llamaGqa3, ropeScaling }));
    expect(config.ropeScaling).toMatchObject({ type: 'llama3', factor: 8, originalMaxPositions: 64 });
    expect(model.forward(TOKENS).every(Number.isFinite)).toBe(true);
  });
});

describe('files', () => {
  it('sharded index loads to the same tensors as the single file', async () => {
    const opts = randomConfigs.llamaGqa3;
    const single = await make(opts);
    const shardedDir = await make({ ...opts, sharded: true });
    const files = (await readdir(shardedDir)).sort();
    expect(files).toEqual([
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const index = JSON.parse(await readFile(path.join(shardedDir, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map))).toEqual(
      new Set(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']),
    );
    expect(index.metadata.total_size).toBeGreaterThan(0);
    const a = await loadReferenceModel(single);
    const b = await loadReferenceModel(shardedDir);
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    for (const [name, t] of a.tensors) expect(Array.from(b.tensors.get(name)!), name).toEqual(Array.from(t));
    expect(maxAbsDiff(b.model.forward(TOKENS), a.model.forward(TOKENS))).toBe(0);
  });

  it('a weight_map pointing at the wrong shard is an error', async () => {
    const dir = await make({ ...randomConfigs.mistral, sharded: true });
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexFile, 'utf8'));
    index.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    await writeFile(indexFile, JSON.stringify(index));
    await expect(loadReferenceModel(dir)).rejects.toThrow(ModelFormatError);
  });

  it('F16 and BF16 weights load and stay close to F32', async () => {
    const base = await loadReferenceModel(await make(randomConfigs.qwen3QkNorm));
    const ref = base.model.forward(TOKENS);
    for (const [dtype, tol] of [['F16', 0.05], ['BF16', 0.3]] as const) {
      const { model } = await loadReferenceModel(await make({ ...randomConfigs.qwen3QkNorm, dtype }));
      const logits = model.forward(TOKENS);
      expect(logits.every(Number.isFinite)).toBe(true);
      expect(maxAbsDiff(logits, ref), dtype).toBeLessThan(tol);
    }
  });

  it('the tokenizer files are copied and the config is HF-shaped', async () => {
    const dir = await make({ ...randomConfigs.qwen2Bias, headDim: 16 });
    const cfg = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model_type: 'qwen2', attention_bias: true, head_dim: 16, bos_token_id: 1, eos_token_id: 2 });
    expect(JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8')).model).toBeDefined();
  });
});
