/**
 * The `zip` layout on the GPU against its CPU reference (src/reference/kv-zip.ts) on random shapes: GQA
 * ratios 1–4, head dims 8/64/128, token counts that are not multiples of G or R, prefill chunks and decode
 * steps. Per step the attention output read in place must match attention over the GPU's own decoded past;
 * at the end the packed codes, scales, channel scales and bitmasks must equal the reference's bit for bit,
 * the saliency accumulators agree to f32 rounding, and quantization errors stay within half a step.
 * Then saliency selection itself: crafted keys that draw all the attention must be the salient ones, and the
 * salient fraction orders the reconstruction error (r = 1 best, r = 0 worst).
 */
import { describe, expect, it } from 'vitest';
import { ZipKvCache } from '../../src/kv/zip-cache';
import { zipFormat, zipQuantizedCount, type ZipFormat } from '../../src/kv/zip-format';
import { f16BitsToF32 } from '../../src/model/safetensors';
import { attention } from '../../src/reference/kernels';
import { decodeZipRow, zipLocate, zipValueScale, ZipLayerReference } from '../../src/reference/kv-zip';
import { attentionPartials, useKernelHarness, randomArray, relativeMaxError, type KernelHarness } from '../helpers/gpu';

interface Case {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  format: { highBits: 4 | 8; lowBits: 2 | 4; salientFraction: number; residual: number; group: number };
  steps: number[];
}

const zip = (salientFraction: number, residual: number, group: number, highBits: 4 | 8 = 4, lowBits: 2 | 4 = 2) => ({ highBits, lowBits, salientFraction, residual, group });

const CASES: Case[] = [
  { name: 'GQA 1 d=8 R=16 G=8 r=0.5', heads: 2, kvHeads: 2, headDim: 8, format: zip(0.5, 16, 8), steps: [5, 1, 1, 13, 1, 20, 1] },
  { name: 'GQA 2 d=64 R=32 G=16 r=0.4 (S=13: ragged key groups)', heads: 4, kvHeads: 2, headDim: 64, format: zip(0.4, 32, 16), steps: [40, 1, 1, 30, 1] },
  { name: 'GQA 3 d=64 R=16 G=8 r=0.25 8/4 bits', heads: 3, kvHeads: 1, headDim: 64, format: zip(0.25, 16, 8, 8, 4), steps: [7, 1, 1, 1, 30, 1, 2] },
  { name: 'GQA 4 d=128 R=64 G=32 r=0.5 (defaults)', heads: 8, kvHeads: 2, headDim: 128, format: zip(0.5, 64, 32), steps: [70, 1, 64, 1] },
  { name: 'GQA 4 d=8 R=40 G=16 r=0.6 (two mask words)', heads: 8, kvHeads: 2, headDim: 8, format: zip(0.6, 40, 16), steps: [45, 1, 50, 1, 1] },
  { name: 'GQA 2 d=8 R=16 r=1 (all salient)', heads: 4, kvHeads: 2, headDim: 8, format: zip(1, 16, 8), steps: [20, 1, 17] },
  { name: 'GQA 2 d=8 R=16 r=0 (none salient)', heads: 4, kvHeads: 2, headDim: 8, format: zip(0, 16, 8), steps: [20, 1, 17] },
];

const variant = { weight: 'f32', kv: 'f32', subgroups: false } as const;

/** GPU cache and CPU reference driven through the same steps. */
class Pair {
  readonly cache: ZipKvCache;
  private readonly partials: GPUBuffer;
  readonly ref: ZipLayerReference;
  readonly f: ZipFormat;
  worstAttention = 0;

  constructor(
    private readonly h: KernelHarness,
    readonly heads: number,
    kvHeads: number,
    readonly headDim: number,
    format: Case['format'],
  ) {
    this.f = zipFormat({ kvHeads, headDim, ...format });
    const shape = { numLayers: 1, numHeads: heads, numKvHeads: kvHeads, headDim, maxTokens: 512, maxStepTokens: 128 };
    this.cache = new ZipKvCache(h.gpu.device, shape, this.f, 4, 'zip-test');
    this.ref = new ZipLayerReference(this.f, heads);
    this.partials = attentionPartials(h, heads, headDim);
  }

  /** One step on both; checks the GPU attention against attention over the GPU's own decoded past. */
  async step(q: Float32Array, k: Float32Array, v: Float32Array): Promise<void> {
    const T = k.length / this.f.rowElems;
    const pos0 = this.cache.length;
    const past = await this.decodedPast(pos0);
    const [qb, kb, vb] = [this.h.upload(q), this.h.upload(k), this.h.upload(v)];
    const out = this.h.empty(q.length * 4);
    this.cache.reserve(pos0 + T);
    await this.h.run(variant, (rec) => this.cache.recordAttention(rec, 0, { q: qb, k: kb, v: vb, out, partials: this.partials, tokens: T, pos0 }), pos0, T);
    this.cache.commit(T);
    const gpuOut = await this.h.readF32(out, q.length);
    this.ref.step(k, v, q);
    const want = attention(q, concat(past.k, k), concat(past.v, v), pos0, T, this.heads, this.f.kvHeads, this.headDim);
    this.worstAttention = Math.max(this.worstAttention, relativeMaxError(gpuOut, want));
    for (const b of [qb, kb, vb, out]) this.h.buffers.release(b);
  }

  buffers(): Promise<{ codes: Uint32Array; meta: Uint32Array; saliency: Float32Array }> {
    return this.cache.readLayer(0);
  }

  /** Rows [0, n) as the GPU holds them: its packed blocks decoded on the CPU, then the full-precision ring. */
  async decodedPast(n: number): Promise<{ k: Float32Array; v: Float32Array }> {
    const rows = this.ref.inputs(n);
    const quantized = zipQuantizedCount(this.f, n);
    if (quantized === 0) return rows;
    const { codes, meta } = await this.buffers();
    for (let p = 0; p < quantized; p++) {
      rows.k.set(decodeZipRow(this.f, codes, meta, p, 0), p * this.f.rowElems);
      rows.v.set(decodeZipRow(this.f, codes, meta, p, 1), p * this.f.rowElems);
    }
    return rows;
  }
}

// Both attention schedules: barrier-free (CPU adapters) and cooperative workgroups (GPUs).
for (const schedule of ['software', 'hardware'] as const) describe(`zip KV layout vs CPU reference (${schedule} schedule)`, () => {
  const h = useKernelHarness({ allowF16: false, schedule });

  for (const c of CASES) {
    it(c.name, async () => {
      const pair = new Pair(h, c.heads, c.kvHeads, c.headDim, c.format);
      const f = pair.f;
      const E = f.rowElems;
      let seed = 101;
      for (const T of c.steps) {
        // Keys with a few outlier channels, as real keys have; values with uneven channel ranges.
        const k = randomArray(T * E, seed++, 1).map((x, i) => ((i % E) % 7 === 3 ? x * 6 : x));
        const v = randomArray(T * E, seed++, 1).map((x, i) => x * (1 + ((i % E) % 5)));
        const q = randomArray(T * c.heads * c.headDim, seed++, 2);
        await pair.step(q, k, v);
      }
      const n = pair.cache.length;
      expect(n).toBe(c.steps.reduce((a, b) => a + b, 0));
      const quantized = zipQuantizedCount(f, n);
      const blocks = quantized / f.residual;
      expect(blocks).toBeGreaterThan(0);
      const gpu = await pair.buffers();
      const ref = pair.ref;
      // Packed state, bit for bit, over the frozen blocks.
      const codeMismatch = countMismatches(gpu.codes, ref.codes, blocks * f.codeWords);
      const metaMismatch = countMismatches(gpu.meta, ref.meta, blocks * f.metaWords);
      // Every head of every block has exactly S salient tokens.
      for (let b = 0; b < blocks; b++) {
        for (let g = 0; g < f.kvHeads; g++) {
          let salient = 0;
          for (let i = 0; i < f.residual; i++) salient += zipLocate(f, gpu.meta, b, g, i).salient ? 1 : 0;
          expect(salient).toBe(f.salientSlots);
        }
      }
      // Saliency of the tokens still in the ring: GPU f32 probabilities vs the reference's f64 ones.
      let saliencyErr = 0;
      for (let p = quantized; p < n; p++) {
        const slot = p % f.residual;
        expect(gpu.saliency[f.kvHeads * f.residual + slot]).toBe(ref.count[p]);
        for (let g = 0; g < f.kvHeads; g++) saliencyErr = Math.max(saliencyErr, Math.abs(gpu.saliency[g * f.residual + slot] - ref.acc[g][p]) / Math.max(ref.acc[g][p], 1e-3));
      }
      // Dequantized values equal the reference's and sit within half a step of their inputs.
      const gpuView = await pair.decodedPast(n);
      const refView = ref.view(n);
      const dequantEqual = countMismatches(new Uint32Array(gpuView.k.buffer), new Uint32Array(refView.k.buffer), n * E) + countMismatches(new Uint32Array(gpuView.v.buffer), new Uint32Array(refView.v.buffer), n * E);
      const steps = stepErrors(f, gpu.meta, gpuView, ref.inputs(n), quantized);
      console.log(
        `${c.name}: attention rel err ${pair.worstAttention.toExponential(2)}; code words differing ${codeMismatch}/${blocks * f.codeWords}, ` +
          `meta words differing ${metaMismatch}/${blocks * f.metaWords}, dequantized values differing ${dequantEqual}; ` +
          `saliency rel err ${saliencyErr.toExponential(2)}; worst |k̂ − k|/s ${steps.key.toFixed(3)}, |û − u|/s ${steps.value.toFixed(3)}, |c·(1/c) − 1| ${steps.mismatch.toExponential(1)}`,
      );
      expect(pair.worstAttention).toBeLessThanOrEqual(1e-4);
      expect(codeMismatch).toBe(0);
      expect(metaMismatch).toBe(0);
      expect(dequantEqual).toBe(0);
      expect(saliencyErr).toBeLessThanOrEqual(1e-4);
      expect(steps.key).toBeLessThanOrEqual(0.5 + 1e-3);
      expect(steps.value).toBeLessThanOrEqual(0.5 + 1e-3);
      expect(steps.mismatch).toBeLessThanOrEqual(2 ** -11);
      pair.cache.destroy();
    });
  }

  it('tokens that draw all the attention are the salient ones, per KV head', async () => {
    // R = 16, S = 2: in KV head 0 tokens 3 and 11 match every query, in head 1 tokens 5 and 9.
    const heads = 4;
    const d = 8;
    const pair = new Pair(h, heads, 2, d, zip(2 / 16, 16, 8));
    const E = pair.f.rowElems;
    const favoured = [[3, 11], [5, 9]];
    const direction = (g: number) => Float32Array.from({ length: d }, (_, c) => (c === g ? 1 : 0));
    const rows = (p0: number, T: number, seed: number) => {
      const k = randomArray(T * E, seed, 0.2);
      for (let t = 0; t < T; t++) for (let g = 0; g < 2; g++) if (favoured[g].includes(p0 + t)) k.set(direction(g).map((x) => 4 * x), t * E + g * d);
      const q = new Float32Array(T * heads * d);
      for (let t = 0; t < T; t++) for (let hh = 0; hh < heads; hh++) q.set(direction(Math.floor(hh / 2)).map((x) => 3 * x), (t * heads + hh) * d);
      return { q, k, v: randomArray(T * E, seed + 1, 1) };
    };
    // A prefill chunk of 10 (probes: its last row and hashed rows), then decode steps to complete and pass the block.
    for (const [p0, T] of [[0, 10], ...Array.from({ length: 8 }, (_, i) => [10 + i, 1])]) {
      const { q, k, v } = rows(p0, T, 500 + p0);
      await pair.step(q, k, v);
    }
    const { meta } = await pair.buffers();
    for (let g = 0; g < 2; g++) {
      const gpuSalient = Array.from({ length: 16 }, (_, i) => i).filter((i) => zipLocate(pair.f, meta, 0, g, i).salient);
      const refSalient = pair.ref.salientFlags(0, g).flatMap((s, i) => (s ? [i] : []));
      expect(gpuSalient).toEqual(favoured[g]);
      expect(refSalient).toEqual(favoured[g]);
    }
    expect(pair.worstAttention).toBeLessThanOrEqual(1e-4);
    pair.cache.destroy();
  });

  it('the salient fraction orders reconstruction error: r = 1 (all 4-bit) < r = 0.5 < r = 0 (all 2-bit)', async () => {
    const errors: number[] = [];
    for (const r of [1, 0.5, 0]) {
      const pair = new Pair(h, 4, 2, 64, zip(r, 32, 16));
      const E = pair.f.rowElems;
      for (const [i, T] of [64, 1, 32].entries()) {
        const k = randomArray(T * E, 900 + i, 1).map((x, j) => ((j % E) % 7 === 3 ? x * 6 : x));
        await pair.step(randomArray(T * 4 * 64, 950 + i, 2), k, randomArray(T * E, 990 + i, 1));
      }
      const n = zipQuantizedCount(pair.f, pair.cache.length);
      const got = await pair.decodedPast(n);
      const want = pair.ref.inputs(n);
      errors.push(rms(got.k, want.k) + rms(got.v, want.v));
      pair.cache.destroy();
    }
    console.log(`RMS reconstruction error (K + V) at r = 1, 0.5, 0: ${errors.map((e) => e.toFixed(4)).join(', ')}`);
    expect(errors[0]).toBeLessThan(errors[1]);
    expect(errors[1]).toBeLessThan(errors[2]);
  });
});

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function countMismatches(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  let bad = 0;
  for (let i = 0; i < n; i++) if (a[i] >>> 0 !== (b[i] ?? 0) >>> 0) bad++;
  return bad;
}

function rms(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

/** Worst quantization error over quantized elements in units of the element's step s (values: in the normalized domain u = v/c), and max |c·(1/c) − 1|. */
function stepErrors(f: ZipFormat, meta: Uint32Array, got: { k: Float32Array; v: Float32Array }, want: { k: Float32Array; v: Float32Array }, quantized: number) {
  let key = 0;
  let value = 0;
  let mismatch = 0;
  const d = f.headDim;
  for (let p = 0; p < quantized; p++) {
    const block = Math.floor(p / f.residual);
    for (let g = 0; g < f.kvHeads; g++) {
      const { salient, slot } = zipLocate(f, meta, block, g, p % f.residual);
      const bits = salient ? f.highBits : f.lowBits;
      const [vs] = zipValueScale(f, meta, block, p % f.residual, bits);
      for (let c = 0; c < d; c++) {
        const e = p * f.rowElems + g * d + c;
        const group = (salient ? 0 : f.keyGroupsSalient) + Math.floor(slot / f.keyGroup);
        const ks = f16BitsToF32(meta[block * f.metaWords + (g * f.keyGroups + group) * d + c] & 0xffff);
        const cs = meta[block * f.metaWords + f.channelScaleOffset + g * d + c];
        const channel = f16BitsToF32(cs & 0xffff);
        key = Math.max(key, Math.abs(got.k[e] - want.k[e]) / ks);
        // Values are quantized as u = v·(1/c) and restored as û·c: the quantizer's error is |û − u| (in units of s);
        // c·(1/c) differs from 1 by under 2^-11 on top of it, reported separately.
        const u = Math.fround(want.v[e] * f16BitsToF32(cs >>> 16));
        value = Math.max(value, Math.abs(got.v[e] / channel - u) / vs);
        mismatch = Math.max(mismatch, Math.abs(channel * f16BitsToF32(cs >>> 16) - 1));
      }
    }
  }
  return { key, value, mismatch };
}
