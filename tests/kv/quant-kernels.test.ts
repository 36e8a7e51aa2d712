/**
 * The int8 and KIVI layouts on the GPU against their CPU reference: attention outputs read in place
 * from packed codes + ring + fresh rows, and the packed codes and f16 (s, min) bytes themselves, over
 * several steps (prefill chunks and decode) on random shapes, GQA ratios 1–4 and head dims 8/64/128.
 */
import { describe, expect, it } from 'vitest';
import { keyScaleCount, quantFormat, quantizedCount, type QuantFormat } from '../../src/kv/quant-format';
import { f16BitsToF32 } from '../../src/model/safetensors';
import { QuantKvCache } from '../../src/kv/quant-cache';
import { attention } from '../../src/reference/kernels';
import { decodeRow, QuantReferenceKv, type QuantLayerReference } from '../../src/reference/kv-quant';
import { attentionPartials, useKernelHarness, randomArray, relativeMaxError, type KernelHarness } from '../helpers/gpu';

interface Case {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  format: (E: number) => QuantFormat;
  steps: number[];
}

const int8 = (E: number) => quantFormat({ rowElems: E, keyBits: 8, valueBits: 8, keyGrouping: 'token', group: 32, residual: 0 });
const kivi = (bits: 2 | 4, G: number, R: number) => (E: number) =>
  quantFormat({ rowElems: E, keyBits: bits, valueBits: bits, keyGrouping: 'channel', group: G, residual: R });

const CASES: Case[] = [
  { name: 'int8 GQA 2 d=8', heads: 8, kvHeads: 4, headDim: 8, format: int8, steps: [5, 1, 1, 13, 1] },
  { name: 'int8 GQA 2 d=8 growing past 64', heads: 8, kvHeads: 4, headDim: 8, format: int8, steps: [48, 48, 1, 48] },
  { name: 'int8 R=16 GQA 1 d=64', heads: 2, kvHeads: 2, headDim: 64, format: (E) => quantFormat({ rowElems: E, keyBits: 8, valueBits: 8, keyGrouping: 'token', group: 32, residual: 16 }), steps: [20, 1, 1, 9] },
  { name: 'int8 GQA 3 d=128', heads: 6, kvHeads: 2, headDim: 128, format: int8, steps: [9, 1, 33, 1] },
  { name: 'int8 R=8 GQA 4 d=64', heads: 4, kvHeads: 1, headDim: 64, format: (E) => quantFormat({ rowElems: E, keyBits: 8, valueBits: 8, keyGrouping: 'token', group: 16, residual: 8 }), steps: [11, 1, 1, 20] },
  { name: 'kivi-4 G=8 R=16 GQA 3 d=64', heads: 3, kvHeads: 1, headDim: 64, format: kivi(4, 8, 16), steps: [7, 1, 1, 1, 30, 1, 2] },
  { name: 'kivi-2 G=8 R=16 GQA 4 d=8', heads: 8, kvHeads: 2, headDim: 8, format: kivi(2, 8, 16), steps: [37, 1, 1, 17, 1] },
  { name: 'kivi-2 G=32 R=64 GQA 2 d=128', heads: 4, kvHeads: 2, headDim: 128, format: kivi(2, 32, 64), steps: [70, 1, 64, 1] },
  { name: 'kivi-4 G=32 R=64 GQA 1 d=8 (row of 8 < G)', heads: 1, kvHeads: 1, headDim: 8, format: kivi(4, 32, 64), steps: [100, 1, 40] },
];

// Both attention schedules: barrier-free (CPU adapters) and cooperative workgroups (GPUs).
for (const schedule of ['software', 'hardware'] as const) describe(`quantized KV layouts vs CPU reference (${schedule} schedule)`, () => {
  const h = useKernelHarness({ allowF16: false, schedule });

  for (const c of CASES) {
    it(c.name, async () => {
      const E = c.kvHeads * c.headDim;
      const format = c.format(E);
      const total = c.steps.reduce((a, b) => a + b, 0);
      const shape = { numLayers: 1, numHeads: c.heads, numKvHeads: c.kvHeads, headDim: c.headDim, maxTokens: 512 };
      const cache = new QuantKvCache(h.gpu.device, shape, format, 4, 'test');
      const ref = new QuantReferenceKv(1, format);
      const variant = { weight: 'f32', kv: 'f32', subgroups: false } as const;
      let worst = 0;
      let seed = 11;
      for (const T of c.steps) {
        const pos0 = cache.length;
        // Keys with a few outlier channels, as real keys have.
        const k = randomArray(T * E, seed++, 1).map((x, i) => ((i % E) % 7 === 3 ? x * 6 : x));
        const v = randomArray(T * E, seed++, 1);
        const q = randomArray(T * c.heads * c.headDim, seed++, 1);
        // What attention should see: the GPU's own packed past decoded on the CPU, the reference's full-precision rest.
        const past = await decodedPast(h, cache, ref.layers[0], pos0);
        const [qb, kb, vb] = [h.upload(q), h.upload(k), h.upload(v)];
        const out = h.empty(q.length * 4);
        const partials = attentionPartials(h, c.heads, c.headDim);
        cache.reserve(pos0 + T);
        await h.run(variant, (rec) => cache.recordAttention(rec, 0, { q: qb, k: kb, v: vb, out, partials, tokens: T, pos0 }), pos0, T);
        cache.commit(T);
        const gpuOut = await h.readF32(out, q.length);
        ref.attend(0, k, v);
        const want = attention(q, concat(past.k, k), concat(past.v, v), pos0, T, c.heads, c.kvHeads, c.headDim);
        worst = Math.max(worst, relativeMaxError(gpuOut, want));
      }
      expect(cache.length).toBe(total);
      // Packed bytes. Every stored (s, min) is the reference's to within one f16 ulp (the GPU may fuse the
      // subtract and multiply); every dequantized value is within half a step (+ the f16 rounding of min) of its input.
      const layer = ref.layers[0];
      const buf = cache.debugLayer(0);
      const refScales = layer.scalesFor(cache.allocatedTokens);
      const gpuScales = await h.readU32(buf.scales, refScales.length);
      const scaleUlps = maxUlpDistance(gpuScales, refScales);
      const exactCodes = 1 - mismatchedFraction(await h.readU32(buf.codes, layer.codes.length), layer.codes);
      const gpuView = await decodedPast(h, cache, layer, cache.length);
      const inputs = layer.inputs(cache.length);
      const stepErr = Math.max(...[true, false].map((isKey) => worstStepError(cache, gpuScales, isKey ? gpuView.k : gpuView.v, isKey ? inputs.k : inputs.v, isKey)));
      console.log(
        `${c.name}: attention rel err ${worst.toExponential(2)}; scales within ${scaleUlps} f16 ulp; ` +
          `code words equal to reference ${(exactCodes * 100).toFixed(1)}%; worst |x̂ − x| / s = ${stepErr.toFixed(3)}`,
      );
      expect(layer.codes.length).toBeGreaterThan(0);
      expect(worst).toBeLessThanOrEqual(1e-4);
      expect(scaleUlps).toBeLessThanOrEqual(1);
      expect(exactCodes).toBeGreaterThan(0.7);
      expect(stepErr).toBeLessThanOrEqual(0.75);
      cache.destroy();
    });
  }
});

async function decodedPast(h: KernelHarness, cache: QuantKvCache, layer: QuantLayerReference, n: number) {
  const f = cache.format;
  const fp = layer.view(n);
  if (n === 0) return fp;
  const buf = cache.debugLayer(0);
  const codes = await h.readU32(buf.codes, buf.codes.size / 4);
  const scales = await h.readU32(buf.scales, buf.scales.size / 4);
  for (const isKey of [true, false]) {
    for (let p = 0; p < quantizedCount(f, n, isKey); p++) (isKey ? fp.k : fp.v).set(decodeRow(f, codes, scales, cache.allocatedTokens, p, isKey), p * f.rowElems);
  }
  return fp;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Largest distance in f16 ulps between matching (s, min) halves of two scale arrays. */
function maxUlpDistance(gpu: Uint32Array, ref: Uint32Array): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    for (const shift of [0, 16]) worst = Math.max(worst, Math.abs(((gpu[i] >>> shift) & 0xffff) - ((ref[i] >>> shift) & 0xffff)));
  }
  return worst;
}

/** max over quantized elements of |x̂ − x| / s, using the GPU's own stored s for the element's group. */
function worstStepError(cache: QuantKvCache, scales: Uint32Array, decoded: Float32Array, inputs: Float32Array, isKey: boolean): number {
  const f = cache.format;
  const E = f.rowElems;
  let worst = 0;
  for (let p = 0; p < quantizedCount(f, cache.length, isKey); p++) {
    for (let e = 0; e < E; e++) {
      const packed =
        isKey && f.keyGrouping === 'channel'
          ? scales[Math.floor(p / f.keyBlockTokens) * E + e]
          : scales[(isKey ? 0 : keyScaleCount(f, cache.allocatedTokens)) + p * (E / f.channelGroup) + Math.floor(e / f.channelGroup)];
      const s = f16BitsToF32(packed & 0xffff);
      worst = Math.max(worst, Math.abs(decoded[p * E + e] - inputs[p * E + e]) / s);
    }
  }
  return worst;
}

function mismatchedFraction(gpu: Uint32Array, ref: ArrayLike<number>): number {
  let bad = 0;
  for (let i = 0; i < ref.length; i++) if (gpu[i] !== (ref[i] ?? 0) >>> 0) bad++;
  return ref.length ? bad / ref.length : 0;
}
