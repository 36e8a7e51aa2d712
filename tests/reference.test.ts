/** The CPU reference: golden greedy ids on stories260k, incremental == one-shot, kernels and llama3 RoPE by hand. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../src/errors';
import { parseModelConfig, type ModelConfig } from '../src/model/config';
import { ropeInverseFrequencies } from '../src/model/rope-frequencies';
import { ReferenceModel } from '../src/reference/forward';
import { greedyGenerate } from '../src/reference/greedy';
import { add, applyRope, argmax, attention, embed, matmul, rmsNorm, swiglu } from '../src/reference/kernels';
import { loadReferenceModel } from '../src/reference/load-node';
import { TOKENIZER_SOURCE } from './helpers/random-model';

const STORIES = TOKENIZER_SOURCE; // the stories260k folder
const SHARED = path.resolve(STORIES, '..', '..');

// From shared/models/README.md.
const ONCE_PROMPT = [1, 403, 407, 261, 378];
const ONCE_IDS = [
  432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426,
  385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270,
  333, 415, 426, 13, 438, 310,
];
const TOM_PROMPT = [1, 274, 287, 269, 301, 425, 411, 263, 377, 267, 265];
const TOM_IDS = [
  282, 295, 433, 426, 342, 394, 261, 370, 268, 414, 444, 335, 261, 370, 268, 414, 444, 426, 342, 391, 266, 267, 337, 335, 312, 426, 342,
  391, 266, 267, 337, 335, 265, 268, 414, 444, 426, 342, 391, 266,
];

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('stories260k reference', () => {
  let model: ReferenceModel;
  let tensors: Map<string, Float32Array>;
  let config: ModelConfig;
  beforeAll(async () => {
    ({ model, tensors, config } = await loadReferenceModel(STORIES));
  });

  it('reproduces the golden greedy ids for "Once upon a time" (60 tokens)', () => {
    model.reset();
    expect(greedyGenerate(model, ONCE_PROMPT, 60)).toEqual(ONCE_IDS);
    expect(model.length).toBe(ONCE_PROMPT.length + 59);
  });

  it('reproduces the golden greedy ids for "Tom and Sue went to the" (40 tokens)', () => {
    model.reset();
    expect(greedyGenerate(model, TOM_PROMPT, 40)).toEqual(TOM_IDS);
  });

  it('token-by-token forward equals one-shot forward within 1e-5', () => {
    const tokens = [...ONCE_PROMPT, ...ONCE_IDS].slice(0, 40);
    model.reset();
    const oneShot = model.forward(tokens);
    expect(oneShot.length).toBe(40 * config.vocabSize);
    model.reset();
    let worst = 0;
    tokens.forEach((id, t) => {
      const row = model.forward([id]);
      worst = Math.max(worst, maxAbsDiff(row, oneShot.subarray(t * config.vocabSize, (t + 1) * config.vocabSize)));
    });
    expect(worst).toBeLessThanOrEqual(1e-5);
    // Uneven chunks agree too.
    model.reset();
    const a = model.forward(tokens.slice(0, 13));
    const b = model.forward(tokens.slice(13));
    expect(maxAbsDiff(a, oneShot.subarray(0, 13 * config.vocabSize))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(b, oneShot.subarray(13 * config.vocabSize))).toBeLessThanOrEqual(1e-5);
    expect(model.length).toBe(40);
    expect(model.forward([]).length).toBe(0);
  });

  it('names a missing or misshaped tensor', () => {
    const missing = new Map(tensors);
    missing.delete('model.layers.3.self_attn.v_proj.weight');
    expect(() => new ReferenceModel(config, missing)).toThrow(ModelFormatError);
    expect(() => new ReferenceModel(config, missing)).toThrow(/model\.layers\.3\.self_attn\.v_proj\.weight/);
    const wrong = new Map(tensors);
    wrong.set('model.norm.weight', new Float32Array(63));
    expect(() => new ReferenceModel(config, wrong)).toThrow(/model\.norm\.weight.*\[64\]/);
  });
});

describe('byte-llama-12l reference', () => {
  it('matches the published perplexity 4.960 on dracula.txt (tied embeddings, head dim 64)', async () => {
    const { model, config } = await loadReferenceModel(path.join(SHARED, 'models', 'byte-llama-12l'));
    const text = readFileSync(path.join(SHARED, 'eval', 'dracula.txt'));
    const start = text.indexOf(10, text.indexOf('*** START OF')) + 1;
    // The published number is over LF text: the file's CRLF line ends are normalized away first.
    const bytes = [...text.subarray(start, start + 4096)].filter((b) => b !== 13).slice(0, 512);
    const tokens = [256, ...bytes]; // BOS, then one token per byte: 512 predicted tokens
    const V = config.vocabSize;
    let nll = 0;
    for (let p = 0; p < tokens.length; p += 64) {
      const logits = model.forward(tokens.slice(p, p + 64));
      for (let i = 0; p + i + 1 < tokens.length && i < 64; i++) {
        const row = logits.subarray(i * V, (i + 1) * V);
        const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
        const logZ = Math.log(row.reduce((z, v) => z + Math.exp(v - max), 0)) + max;
        nll += logZ - row[tokens[p + i + 1]];
      }
    }
    expect(Math.exp(nll / 512)).toBeCloseTo(4.96, 2);
  });
});

describe('reference kernels', () => {
  it('embed, matmul with bias, add, swiglu, argmax', () => {
    const table = Float32Array.from([0, 1, 10, 11, 20, 21]); // [3, 2]
    expect(Array.from(embed(table, [2, 0], 2))).toEqual([20, 21, 0, 1]);
    expect(() => embed(table, [3], 2)).toThrow(RangeError);
    const x = Float32Array.from([1, 2, 3, 4]); // [2, 2]
    const w = Float32Array.from([1, 0, 0, 1, 1, 1]); // [3, 2]
    expect(Array.from(matmul(x, w, 3, 2, Float32Array.from([0.5, 0, -1])))).toEqual([1.5, 2, 2, 3.5, 4, 6]);
    expect(Array.from(add(x, x))).toEqual([2, 4, 6, 8]);
    const s = swiglu(Float32Array.from([0, 2]), Float32Array.from([5, 3]));
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo((2 / (1 + Math.exp(-2))) * 3, 5);
    expect(argmax([1, 5, 5, 2])).toBe(1);
  });

  it('rmsNorm normalizes each row', () => {
    const y = rmsNorm(Float32Array.from([3, 4, 0, 0]), Float32Array.from([1, 2]), 0);
    const r = Math.sqrt(12.5);
    expect(y[0]).toBeCloseTo(3 / r, 6);
    expect(y[1]).toBeCloseTo((4 / r) * 2, 6);
    expect(Array.from(rmsNorm(Float32Array.from([0, 0]), Float32Array.from([1, 1]), 1e-5))).toEqual([0, 0]);
  });

  it('attention: the first query sees only itself; GQA maps heads to KV groups', () => {
    // H = 2 query heads share Hk = 1 KV head, d = 1, two positions.
    const k = Float32Array.from([1, -1]);
    const v = Float32Array.from([10, 20]);
    const q = Float32Array.from([1, 1, 2, -2]);
    const out = attention(q, k, v, 0, 2, 2, 1, 1);
    expect(out[0]).toBeCloseTo(10, 6);
    expect(out[1]).toBeCloseTo(10, 6);
    const p = (s: number) => 1 / (1 + Math.exp(-2 * s)); // weight of key 0 with scores ±s
    expect(out[2]).toBeCloseTo(p(2) * 10 + (1 - p(2)) * 20, 5);
    expect(out[3]).toBeCloseTo(p(-2) * 10 + (1 - p(-2)) * 20, 5);
  });
});

describe('RoPE', () => {
  const llama3 = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192, rope_type: 'llama3' };

  it('llama3 scaling matches a hand-computed frequency', () => {
    const cfg = parseModelConfig({
      model_type: 'llama', hidden_size: 256, num_attention_heads: 4, intermediate_size: 512, num_hidden_layers: 1,
      vocab_size: 16, rope_theta: 500000, rope_scaling: llama3,
    });
    const inv = ropeInverseFrequencies(cfg); // headDim 64
    // i = 16: base 500000^(-32/64) = 1.41421356e-3; its wavelength 2π/base = 4442.883 lies between 8192/4 and
    // 8192/1, so smooth = (8192/4442.883 - 1) / 3 = 0.2812826 and the frequency is
    // base · ((1 - smooth)/8 + smooth) = 1.41421356e-3 · 0.3711223 = 5.248462e-4.
    expect(inv[16]).toBeCloseTo(5.248462e-4, 9);
    expect(inv[0]).toBeCloseTo(1, 7); // high frequency: unscaled
    expect(inv[31]).toBeCloseTo(Math.pow(500000, -62 / 64) / 8, 12); // low frequency: divided by factor

    // Rotating a unit vector on pair 16 at position 1000 gives (cos, sin) of the scaled angle.
    const x = new Float32Array(2 * 64); // [1, 2 heads, 64]
    x[16] = 1;
    x[64 + 16 + 32] = 1;
    applyRope(x, [1000], inv);
    const angle = Math.fround(1000 * inv[16]);
    expect(x[16]).toBeCloseTo(Math.cos(angle), 6);
    expect(x[48]).toBeCloseTo(Math.sin(angle), 6);
    expect(x[64 + 16]).toBeCloseTo(-Math.sin(angle), 6);
    expect(x[64 + 48]).toBeCloseTo(Math.cos(angle), 6);
  });

  it('a llama3-scaled model runs forward with finite logits', () => {
    const cfg = parseModelConfig({
      model_type: 'llama', hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32,
      num_hidden_layers: 1, vocab_size: 8, rope_theta: 500000, rope_scaling: llama3,
    });
    const t = new Map<string, Float32Array>();
    const fill = (name: string, n: number, v: (i: number) => number) => t.set(name, Float32Array.from({ length: n }, (_, i) => v(i)));
    const wave = (i: number) => Math.sin(i * 0.7) * 0.3;
    fill('model.embed_tokens.weight', 8 * 16, wave);
    fill('model.layers.0.input_layernorm.weight', 16, () => 1);
    fill('model.layers.0.self_attn.q_proj.weight', 16 * 16, wave);
    fill('model.layers.0.self_attn.k_proj.weight', 8 * 16, wave);
    fill('model.layers.0.self_attn.v_proj.weight', 8 * 16, wave);
    fill('model.layers.0.self_attn.o_proj.weight', 16 * 16, wave);
    fill('model.layers.0.post_attention_layernorm.weight', 16, () => 1);
    fill('model.layers.0.mlp.gate_proj.weight', 32 * 16, wave);
    fill('model.layers.0.mlp.up_proj.weight', 32 * 16, wave);
    fill('model.layers.0.mlp.down_proj.weight', 16 * 32, wave);
    fill('model.norm.weight', 16, () => 1);
    fill('lm_head.weight', 8 * 16, wave);
    const logits = new ReferenceModel(cfg, t).forward([1, 2, 3, 4, 5]);
    expect(logits.length).toBe(5 * 8);
    expect(logits.every(Number.isFinite)).toBe(true);
  });
});
