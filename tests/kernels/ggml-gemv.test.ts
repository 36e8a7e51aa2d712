// The decode GEMV (shaders/gemv.wgsl, both schedules) on ggml block-quantized weights, dequantized in the
// loop (gemv_rows: wq_group32, gemv_coop: wq_vec4), against compositions of the CPU reference kernels applied
// to the CPU-dequantized weights: RMSNorm prologue, three segments, bias, residual into a column range,
// SwiGLU, row-split parts, and the unfused fallback for weights of different types; f32 and f16 bias/gain,
// with and without subgroups.
import { describe, expect, it } from 'vitest';
import { QUANT_TYPES, type QuantType } from '../../src/gpu/block-types';
import { gatedProjection, linear, normedProjection } from '../../src/kernels/linear';
import { matmul, rmsNorm, swiglu } from '../../src/reference/kernels';
import { randomArray, useKernelHarness } from '../helpers/gpu';
import { deviceVariants, expectClose, F32_TOL, nanBuffer, roundF16, uploadWeight, type NamedVariant } from './fixtures';
import { quantWeights, testCols, uploadQuantWeight } from './quant-fixtures';

const EPS = 1e-5;
/**
 * GPU vs reference of the same dequantized f32 weights (and f16-rounded bias/gain for f16 variants): only the
 * order of the f32 sums differs (max error relative to max(1, max |y|); measured ≤ 1e-6).
 */
const TOL = F32_TOL;

const stored = (v: NamedVariant, a: Float32Array) => (v.dtype === 'f16' ? roundF16(a) : a);

function rowsOf(a: Float32Array, from: number, count: number, width: number): Float32Array {
  return a.slice(from * width, (from + count) * width);
}

// Every type through the fused 3-segment path; the other fused options (each a pipeline of its own, which
// lavapipe takes ~1 s to compile) with a few types that cover both row alignments and both block sizes.
const RESIDUAL_TYPES: QuantType[] = ['q4_0', 'q5_1', 'q4_k', 'q6_k'];
const SPLIT_TYPES: QuantType[] = ['q8_0', 'q5_k'];
const SWIGLU_TYPES: QuantType[] = ['q4_1', 'q4_k', 'q6_k'];

for (const schedule of ['software', 'hardware'] as const) {
  describe(`quantized GEMV, ${schedule} schedule`, () => {
    const h = useKernelHarness({ schedule });
    const entry = schedule === 'software' ? 'gemv_rows' : 'gemv_coop';
    // gemv_rows has no subgroup code. gemv_coop runs with subgroups where the device has them (lavapipe
    // compiles its shared-memory fallback several times slower) and, for q4_k, without them too; q4_k also
    // runs with f16 bias and gain where the device has shader-f16.
    const sg = () => schedule === 'hardware' && h.gpu.caps.subgroups;
    const mainVariant = () => deviceVariants(h, true).find((v) => v.dtype === 'f32' && v.variant.subgroups === sg())!;
    const variantsFor = (type: QuantType) => deviceVariants(h, true).filter((v) =>
      v.label === mainVariant().label || (type === 'q4_k' && (v.dtype === 'f16' ? v.variant.subgroups === sg() : schedule === 'hardware')));
    let seed = 7000;

    it('runs the schedule it was asked for', () => {
      expect(h.gpu.caps.softwareAdapter).toBe(schedule === 'software');
    });

    async function normed(type: QuantType, v: NamedVariant, c: { T: number; K: number; Ns: number[]; parts?: number[]; xRows: number; xRow: number; bias: boolean }) {
      const N = c.Ns.reduce((p, q) => p + q, 0);
      const x = randomArray(c.xRows * c.K, seed++, 2);
      const gain = randomArray(c.K, seed++, 1.5);
      const bias = c.bias ? randomArray(N, seed++, 1) : undefined;
      const ws = c.Ns.map((n, i) => quantWeights(type, n, c.K, seed++, i % 2 === 0));
      const mats = ws.map((w, i) => uploadQuantWeight(h, `w${i}`, w.bytes, c.Ns[i], c.K, type, c.parts));
      const y = nanBuffer(h, c.T * N);
      const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, c.K, v.dtype), eps: EPS, scratch: nanBuffer(h, c.T * c.K), row: c.xRow };
      await h.run(v.variant, (rec) => normedProjection(rec, input, mats, y, c.T, bias && uploadWeight(h, 'b', bias, 1, N, v.dtype)));
      const normed = rmsNorm(rowsOf(x, c.xRow, c.T, c.K), stored(v, gain), EPS);
      const want = matmul(normed, Float32Array.from(ws.flatMap((w) => [...w.values])), N, c.K, bias && stored(v, bias));
      const shape = `T=${c.T} K=${c.K} N=${c.Ns.join('+')}${c.parts ? ` parts=${c.parts.join('/')}` : ''} xRow=${c.xRow}${c.bias ? ' +bias' : ''}`;
      expectClose(`${entry} norm ${type} ${v.label}`, shape, await h.readF32(y, c.T * N), want, TOL);
    }

    it('normedProjection: rmsnorm prologue, 3 segments + bias, every type', async () => {
      for (const type of QUANT_TYPES) {
        for (const v of variantsFor(type)) {
          await normed(type, v, { T: 1, K: testCols(type, 1), Ns: [37, 5, 9], xRows: 3, xRow: 2, bias: true });
          await normed(type, v, { T: 2, K: testCols(type, 0), Ns: [64, 3, 70], xRows: 2, xRow: 0, bias: true });
        }
      }
    });

    it('normedProjection of one row-split weight (the LM head): one dispatch per part', async () => {
      for (const type of SPLIT_TYPES) {
        await normed(type, mainVariant(), { T: 2, K: testCols(type, 1), Ns: [131], parts: [3, 64, 64], xRows: 2, xRow: 0, bias: false });
      }
    });

    it('linear: bias and y += x·Wᵀ into a column range, row-split weights', async () => {
      const v = mainVariant();
      for (const type of RESIDUAL_TYPES) {
        for (const [T, K, N, parts] of [[1, testCols(type, 0), 37, [37]], [2, testCols(type, 1), 131, [50, 81]]] as Array<[number, number, number, number[]]>) {
          const x = randomArray(T * K, seed++);
          const w = quantWeights(type, N, K, seed++, T === 1);
          const bias = randomArray(140, seed++, 2);
          const y0 = randomArray(T * 140, seed++, 3);
          const y = h.upload(y0);
          await h.run(v.variant, (rec) => linear(rec, h.upload(x), uploadQuantWeight(h, 'w', w.bytes, N, K, type, parts), y, T, uploadWeight(h, 'b', bias, 1, 140, 'f32'), { residual: true, colStart: 6, nTotal: 140 }));
          const prod = matmul(x, w.values, N, K);
          const want = Float32Array.from(y0);
          for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) want[t * 140 + 6 + n] += prod[t * N + n] + bias[6 + n];
          expectClose(`${entry} residual ${type}`, `T=${T} K=${K} N=${N} parts=${parts.join('/')} +bias residual in 140`, await h.readF32(y, T * 140), want, TOL);
        }
      }
    });

    it('gatedProjection: rmsnorm, gate and up, SwiGLU in one dispatch', async () => {
      const v = mainVariant();
      for (const type of SWIGLU_TYPES) {
        for (const [T, K, F] of [[1, testCols(type, 1), 37], [2, testCols(type, 0), 131]]) {
          const x = randomArray(T * K, seed++, 2);
          const gain = randomArray(K, seed++);
          const g = quantWeights(type, F, K, seed++, true);
          const u = quantWeights(type, F, K, seed++, false);
          const out = nanBuffer(h, T * F);
          const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, K, v.dtype), eps: EPS, scratch: nanBuffer(h, T * K) };
          await h.run(v.variant, (rec) => gatedProjection(rec, input, uploadQuantWeight(h, 'wg', g.bytes, F, K, type), uploadQuantWeight(h, 'wu', u.bytes, F, K, type), out, T, nanBuffer(h, T * F)));
          const normed = rmsNorm(x, gain, EPS);
          const want = swiglu(matmul(normed, g.values, F, K), matmul(normed, u.values, F, K));
          expectClose(`${entry} swiglu ${type}`, `T=${T} K=${K} F=${F}`, await h.readF32(out, T * F), want, TOL);
        }
      }
    });

    // A Q4_K_M layer mixes q4_k and q6_k: weights of different types are not fused into one GEMV (one shader
    // variant per dtype); each run of one type is a GEMV of its own (gate and up of different types: + swiglu).
    it('mixed quant types in one projection fall back to the unfused path', async () => {
      const v = mainVariant();
      const K = 256;
      const types: QuantType[] = ['q4_k', 'q6_k', 'q4_k'];
      const Ns = [37, 9, 9];
      const x = randomArray(K, seed++, 2);
      const gain = randomArray(K, seed++);
      const ws = types.map((t, i) => quantWeights(t, Ns[i], K, seed++, true));
      const mats = ws.map((w, i) => uploadQuantWeight(h, `w${i}`, w.bytes, Ns[i], K, types[i]));
      const input = () => ({ x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, K, v.dtype), eps: EPS, scratch: nanBuffer(h, K) });
      const normed = rmsNorm(x, gain, EPS);
      const y = nanBuffer(h, 55);
      await h.run(v.variant, (rec) => normedProjection(rec, input(), mats, y, 1));
      expectClose(`${entry} mixed q4_k/q6_k`, 'T=1 K=256 N=37+9+9', await h.readF32(y, 55), matmul(normed, Float32Array.from(ws.flatMap((w) => [...w.values])), 55, K), TOL);
      const out = nanBuffer(h, 9);
      await h.run(v.variant, (rec) => gatedProjection(rec, input(), mats[2], mats[1], out, 1, nanBuffer(h, 9)));
      const want = swiglu(matmul(normed, ws[2].values, 9, K), matmul(normed, ws[1].values, 9, K));
      expectClose(`${entry} mixed swiglu`, 'T=1 K=256 F=9 gate q4_k up q6_k', await h.readF32(out, 9), want, TOL);
    });

    // q|k of one type and v of another (a Q4_K_M layer, or on-load q4's mix): one GEMV per run of one type,
    // each normalizing in its prologue, with the bias at each run's columns; no separate rmsnorm dispatch.
    it('mixed quant types: one fused GEMV per run of one type, bias and norm in each', async () => {
      const v = mainVariant();
      const K = 256;
      for (const [T, types] of [[1, ['q4_k', 'q4_k', 'q6_k']], [2, ['q4_0', 'q4_0', 'q5_0']], [1, ['q4_k', 'q6_k', 'q4_k']]] as Array<[number, QuantType[]]>) {
        const Ns = [37, 9, 9];
        const x = randomArray(T * K, seed++, 2);
        const gain = randomArray(K, seed++);
        const bias = randomArray(55, seed++, 1);
        const ws = types.map((t, i) => quantWeights(t, Ns[i], K, seed++, i !== 1));
        const mats = ws.map((w, i) => uploadQuantWeight(h, `w${i}`, w.bytes, Ns[i], K, types[i]));
        const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, K, v.dtype), eps: EPS, scratch: nanBuffer(h, T * K) };
        const y = nanBuffer(h, T * 55);
        const labels: string[] = [];
        await h.run(v.variant, (rec) => {
          const dispatch = rec.dispatch.bind(rec);
          rec.dispatch = (label, ...rest) => (labels.push(label), dispatch(label, ...rest));
          normedProjection(rec, input, mats, y, T, uploadWeight(h, 'b', bias, 1, 55, v.dtype));
        });
        const want = matmul(rmsNorm(x, gain, EPS), Float32Array.from(ws.flatMap((w) => [...w.values])), 55, K, stored(v, bias));
        expectClose(`${entry} mixed ${types.join('/')}`, `T=${T} K=256 N=37+9+9 +bias`, await h.readF32(y, T * 55), want, TOL);
        expect(labels.length, labels.join(', ')).toBe(types[0] === types[1] ? 2 : 3);
      }
    });
  });
}
