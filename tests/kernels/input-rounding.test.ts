// llama.cpp's input rounding (shaders/round_input.wgsl) against its CPU reference (src/reference/input-rounding.ts),
// and the products that use it (src/kernels/linear.ts with WeightMatrix.inputRounding): decode GEMV, prefill
// matmul, normedProjection with weights of different roundings side by side, gatedProjection.
// Tolerances: the rounding is exact (the kernel corrects WGSL's 2.5-ULP division to the correctly rounded quotient;
// before it did, SwiftShader's q8_k scales were off by ulps). compareRounded would let an element whose scaled value
// lies within 1e-5 of a half-integer land one step away, and counts such elements: there must be none. Products
// over the GPU's rounded rows: F32_TOL, as every GEMV.
import { describe, expect, it } from 'vitest';
import { ROUNDING_BLOCK, type InputRounding } from '../../src/gpu/block-types';
import { roundInputInPlace } from '../../src/kernels/input-rounding';
import { gatedProjection, linear, normedProjection } from '../../src/kernels/linear';
import { roundInput } from '../../src/reference/input-rounding';
import { dequantize } from '../../src/reference/ggml-blocks';
import { quantize } from '../../src/reference/ggml-quantize';
import { matmul, rmsNorm, swiglu } from '../../src/reference/kernels';
import { randomArray, relativeMaxError, useKernelHarness, type KernelHarness } from '../helpers/gpu';
import { llamaQ8_1Product } from '../helpers/llama-q8_1';
import { expectClose, F32_TOL, nanBuffer, uploadWeight } from './fixtures';
import { uploadQuantWeight } from './quant-fixtures';

const ROUNDINGS: InputRounding[] = ['q8_0', 'q8_k', 'f16', 'bf16'];
/** Weights of the two types whose input is Q8_1-rounded (then the product adds the min term on the block sums). */
const Q8_1_TYPES = ['q4_1', 'q5_1'] as const;
const EPS = 1e-5;
const VARIANT = { weight: 'f32', kv: 'f32', subgroups: false } as const;

/** Rows with blocks that test the edges: an all-zero block, a negative extreme, tiny and large magnitudes. */
function testRows(rows: number, cols: number, seed: number): Float32Array {
  const x = randomArray(rows * cols, seed, 3);
  const block = 256;
  for (let i = 0; i < Math.min(block, x.length); i++) x[i] = 0;
  if (x.length >= 2 * block) {
    x[block + 7] = -40;
    for (let i = 2 * block; i < Math.min(3 * block, x.length); i++) x[i] *= 1e-6;
    for (let i = 3 * block; i < Math.min(4 * block, x.length); i++) x[i] *= 3000;
  }
  if (x.length >= 5 * block) {
    // Exact half-integers after scaling (max −127: scale 1 for q8_0 and q8_k): ties go to even, as llama.cpp's.
    x[4 * block] = -127;
    for (let j = 1; j < 16; j++) x[4 * block + j] = (j % 2 ? 1 : -1) * (j + 0.5);
  }
  return x;
}

/** Elements where ref and GPU differ: each must be a near-tie of the rounding, and one step apart. */
function compareRounded(rounding: InputRounding, x: Float32Array, got: Float32Array, want: Float32Array): number {
  const block = ROUNDING_BLOCK[rounding];
  let ties = 0;
  for (let b = 0; b < x.length; b += block) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < block; j++) if (Math.abs(x[b + j]) > amax) [amax, max] = [Math.abs(x[b + j]), x[b + j]];
    const scale = rounding === 'q8_0' || rounding === 'q8_1' ? 127 / amax : -127 / max;
    for (let j = 0; j < block; j++) {
      const i = b + j;
      if (Object.is(got[i], want[i]) || got[i] === want[i]) continue;
      const t = Math.abs(x[i] * scale);
      const nearHalf = block > 1 && Math.abs(t - Math.floor(t) - 0.5) < 1e-5;
      expect(nearHalf, `${rounding} element ${i}: x=${x[i]} got ${got[i]} want ${want[i]}`).toBe(true);
      expect(Math.abs(got[i] - want[i]), `${rounding} element ${i}: one step`).toBeLessThanOrEqual((1.01 * amax) / 127);
      ties++;
    }
  }
  return ties;
}

async function roundOnGpu(h: KernelHarness, rounding: InputRounding, x: Float32Array): Promise<Float32Array> {
  const buf = h.upload(x);
  await h.run(VARIANT, (rec) => roundInputInPlace(rec, buf, rounding, x.length));
  return h.readF32(buf, x.length);
}

describe('input rounding (llama.cpp numerics)', () => {
  const h = useKernelHarness({ schedule: 'software' });
  let seed = 7100;

  it('rounds as the CPU reference, every mode, on odd row counts', async () => {
    for (const rounding of [...ROUNDINGS, 'q8_1'] as InputRounding[]) {
      for (const [rows, cols] of [[1, 1024], [3, 512], [7, 2304], [64, 256]]) {
        const x = testRows(rows, cols, seed++);
        const got = await roundOnGpu(h, rounding, x);
        const want = roundInput(rounding, x, cols);
        const ties = compareRounded(rounding, x, got, want);
        console.log(`[kernel-error] round_input ${rounding.padEnd(12)} | ${`${rows}×${cols}`.padEnd(44)} | ${ties} near-tie element(s) one step off`);
        expect(ties).toBe(0);
        // The rounding is what it says: 8-bit blocks hold at most 255 levels, f16 keeps 11 bits.
        if (rounding === 'q8_0' || rounding === 'q8_1') expect(new Set(want.slice(1024, 1056)).size).toBeLessThanOrEqual(255);
        expect(want.slice(0, 256).every((v) => v === 0)).toBe(true);
        if (x.length >= 1280 && (rounding === 'q8_0' || rounding === 'q8_k')) expect(Array.from(got.slice(1025, 1029))).toEqual([2, -2, 4, -4]);
      }
    }
  });

  it('dispatches past the per-dimension workgroup limit', async () => {
    // 65,535 workgroups of 64 elementwise invocations is 4,194,240 elements: one more row pushes past it.
    const x = randomArray(4_194_304 + 1024, seed++, 2);
    const got = await roundOnGpu(h, 'f16', x);
    expect(compareRounded('f16', x, got, roundInput('f16', x, 1024))).toBe(0);
  });

  it('linear rounds its input first: decode GEMV and prefill matmul, with a residual', async () => {
    for (const rounding of ROUNDINGS) {
      for (const [T, K, N] of [[1, 512, 67], [2, 256, 40], [37, 512, 33]]) {
        const x = randomArray(T * K, seed++, 2);
        const w = randomArray(N * K, seed++, 0.5);
        const y0 = randomArray(T * N, seed++, 1);
        const xBuf = h.upload(x);
        const y = h.upload(y0);
        const weight = { ...uploadWeight(h, 'w', w, N, K, 'f32'), inputRounding: rounding };
        await h.run(VARIANT, (rec) => linear(rec, xBuf, weight, y, T, undefined, { residual: true }));
        // x was rounded in place: it is the reference's rounding, and the product is over exactly those values.
        const rounded = await h.readF32(xBuf, T * K);
        compareRounded(rounding, x, rounded, roundInput(rounding, x, K));
        const want = matmul(rounded, w, N, K).map((v, i) => v + y0[i]);
        expectClose(`linear rounded ${rounding}`, `T=${T} K=${K} N=${N}`, await h.readF32(y, T * N), want, F32_TOL);
        // …and it differs from the unrounded product (the rounding is not a label).
        if (rounding === 'q8_0') expect(Math.max(...want.map((v, i) => Math.abs(v - y0[i] - matmul(x, w, N, K)[i])))).toBeGreaterThan(1e-4);
      }
    }
  });

  it('normedProjection: norm, then one rounding per run of weights that share it', async () => {
    for (const T of [1, 5]) {
      const K = 512;
      const Ns = [40, 24, 24];
      const roundings: Array<InputRounding | undefined> = ['q8_k', 'q8_k', 'q8_0'];
      const N = Ns.reduce((a, b) => a + b, 0);
      const x = randomArray(T * K, seed++, 2);
      const gain = randomArray(K, seed++, 1.5);
      const ws = Ns.map((n) => randomArray(n * K, seed++, 0.5));
      const bias = randomArray(N, seed++, 1);
      const weights = ws.map((w, i) => ({ ...uploadWeight(h, `w${i}`, w, Ns[i], K, 'f32'), inputRounding: roundings[i] }));
      const y = nanBuffer(h, T * N);
      const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, K, 'f32'), eps: EPS, scratch: nanBuffer(h, T * K) };
      await h.run(VARIANT, (rec) => normedProjection(rec, input, weights, y, T, uploadWeight(h, 'b', bias, 1, N, 'f32')));
      const normed = rmsNorm(x, gain, EPS);
      // The scratch rows hold the last run's (q8_0) rounding of the GPU's normed rows: every block is integer steps
      // of its largest element / 127, and close to the CPU's rounding of the CPU's norm (which differs in the last ulps).
      const last = await h.readF32(input.scratch, T * K);
      expectClose('normed rows q8_0', `T=${T} K=${K}`, last, roundInput('q8_0', normed, K), 1e-2);
      for (let b = 0; b < last.length; b += 32) {
        const step = Math.max(...last.slice(b, b + 32).map(Math.abs)) / 127;
        for (let j = 0; j < 32; j++) expect(Math.abs(last[b + j] / step - Math.round(last[b + j] / step))).toBeLessThan(1e-3);
      }
      const q8k = roundInput('q8_k', normed, K);
      const want = new Float32Array(T * N);
      const parts = [matmul(q8k, Float32Array.from([...ws[0], ...ws[1]]), Ns[0] + Ns[1], K), matmul(last, ws[2], Ns[2], K)];
      for (let t = 0; t < T; t++) {
        for (let n = 0; n < N; n++) {
          const v = n < Ns[0] + Ns[1] ? parts[0][t * (Ns[0] + Ns[1]) + n] : parts[1][t * Ns[2] + n - Ns[0] - Ns[1]];
          want[t * N + n] = v + bias[n];
        }
      }
      // q8_k's rows are not read back, so a near-tie flip there moves an output by one step · |w|: 1e-3 of the scale.
      expectClose('normedProjection rounded', `T=${T} K=${K} N=${Ns.join('+')} q8_k|q8_k|q8_0`, await h.readF32(y, T * N), want, 1e-3);
    }
  });

  it('gatedProjection: norm, rounding, gate and up with SwiGLU (same and different roundings)', async () => {
    for (const [T, gr, ur] of [[1, 'q8_0', 'q8_0'], [4, 'q8_0', 'q8_0'], [1, 'q8_k', 'f16'], [3, undefined, 'q8_0']] as Array<[number, InputRounding | undefined, InputRounding | undefined]>) {
      const K = 256;
      const F = 72;
      const x = randomArray(T * K, seed++, 2);
      const gain = randomArray(K, seed++);
      const wg = randomArray(F * K, seed++, 0.5);
      const wu = randomArray(F * K, seed++, 0.5);
      const out = nanBuffer(h, T * F);
      const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, K, 'f32'), eps: EPS, scratch: nanBuffer(h, T * K) };
      const gate = { ...uploadWeight(h, 'gate', wg, F, K, 'f32'), inputRounding: gr };
      const up = { ...uploadWeight(h, 'up', wu, F, K, 'f32'), inputRounding: ur };
      await h.run(VARIANT, (rec) => gatedProjection(rec, input, gate, up, out, T, nanBuffer(h, T * F)));
      const normed = rmsNorm(x, gain, EPS);
      const as = (r: InputRounding | undefined) => (r ? roundInput(r, normed, K) : normed);
      const want = swiglu(matmul(as(gr), wg, F, K), matmul(as(ur), wu, F, K));
      expectClose('gatedProjection rounded', `T=${T} K=${K} F=${F} ${gr ?? 'f32'}|${ur ?? 'f32'}`, await h.readF32(out, T * F), want, 1e-3);
    }
  });
  /** A q4_1 / q5_1 weight [N, K] with Q8_1 input rounding: rows mostly of one sign in places, so the min term is large. */
  function q8_1Weight(type: (typeof Q8_1_TYPES)[number], name: string, N: number, K: number, parts?: number[]) {
    const wf = randomArray(N * K, seed++, 0.2).map((v, i) => v + (i % 64 < 32 ? 0.15 : -0.05));
    const bytes = quantize(type, wf, N, K);
    const weight = { ...uploadQuantWeight(h, name, bytes, N, K, type, parts), inputRounding: 'q8_1' as const };
    return { bytes, weight, values: dequantize(type, bytes, N, K) };
  }

  it('q4_1 / q5_1 with Q8_1 input: llama.cpp\'s product (min term on the block sums) in GEMV, matmul and both projections', async () => {
    for (const type of Q8_1_TYPES) {
      // linear(): decode GEMV (T = 1, 2) and prefill matmul (T = 37), a row-split weight, a residual.
      for (const [T, K, N, parts] of [[1, 256, 37, undefined], [2, 96, 20, [8, 12]], [37, 128, 33, undefined]] as Array<[number, number, number, number[] | undefined]>) {
        const x = randomArray(T * K, seed++, 2).map((v) => v + 0.7);
        const y0 = randomArray(T * N, seed++, 1);
        const w = q8_1Weight(type, 'w', N, K, parts);
        const y = h.upload(y0);
        await h.run(VARIANT, (rec) => linear(rec, h.upload(x), w.weight, y, T, undefined, { residual: true }), 0, T);
        const want = llamaQ8_1Product(type, w.bytes, x, N, K).map((v, i) => v + y0[i]);
        const err = expectClose(`linear ${type} q8_1`, `T=${T} K=${K} N=${N}${parts ? ` parts=${parts.join('/')}` : ''} residual`, await h.readF32(y, T * N), want, F32_TOL);
        // Without the min term (the rounded values' sum instead of s) the product is much further off.
        const plain = matmul(roundInput('q8_1', x, K), w.values, N, K).map((v, i) => v + y0[i]);
        expect(relativeMaxError(plain, want)).toBeGreaterThan(10 * Math.max(err, 1e-7));
      }
      // normedProjection (q and k side by side: one GEMV in decode, then the min term at each one's columns) and
      // gatedProjection (gate and up, SwiGLU after the min terms) on the GPU's normed rows.
      for (const T of [1, 5]) {
        const K = 128;
        const x = randomArray(T * K, seed++, 2);
        const gain = randomArray(K, seed++, 1.5);
        const a = q8_1Weight(type, 'a', 24, K);
        const b = q8_1Weight(type, 'b', 40, K);
        const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, K, 'f32'), eps: EPS, scratch: nanBuffer(h, T * K) };
        const y = nanBuffer(h, T * 64);
        await h.run(VARIANT, (rec) => normedProjection(rec, input, [a.weight, b.weight], y, T), 0, T);
        const normed = rmsNorm(x, gain, EPS);
        const pa = llamaQ8_1Product(type, a.bytes, normed, 24, K);
        const pb = llamaQ8_1Product(type, b.bytes, normed, 40, K);
        const want = Float32Array.from({ length: T * 64 }, (_, i) => (i % 64 < 24 ? pa[Math.floor(i / 64) * 24 + (i % 64)] : pb[Math.floor(i / 64) * 40 + (i % 64) - 24]));
        // The GPU's norm differs from the CPU's in the last ulps, which can move a rounded element by one step.
        expectClose(`normedProjection ${type} q8_1`, `T=${T} K=${K} N=24+40`, await h.readF32(y, T * 64), want, 1e-3);
        const out = nanBuffer(h, T * 24);
        const up = q8_1Weight(type, 'up', 24, K);
        await h.run(VARIANT, (rec) => gatedProjection(rec, input, a.weight, up.weight, out, T, nanBuffer(h, T * 24)), 0, T);
        const gated = swiglu(Float32Array.from(pa), Float32Array.from(llamaQ8_1Product(type, up.bytes, normed, 24, K)));
        expectClose(`gatedProjection ${type} q8_1`, `T=${T} K=${K} F=24`, await h.readF32(out, T * 24), gated, 1e-3);
      }
    }
  });
});
