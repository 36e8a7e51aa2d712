// The fused decode GEMV (shaders/gemv.wgsl, both schedules) and the q/k/v split with RoPE (qkv_split.wgsl)
// against compositions of the CPU reference kernels: RMSNorm prologue, several weights side by side, bias,
// residual add, SwiGLU, a row offset into x, row-split weights; f32/f16 weights, with and without subgroups.
import { describe, expect, it } from 'vitest';
import { gatedProjection, linear, normedProjection } from '../../src/kernels/linear';
import { splitQkvRope } from '../../src/kernels/pointwise';
import { applyRope, matmul, rmsNorm, swiglu } from '../../src/reference/kernels';
import { randomArray, useKernelHarness, type KernelHarness } from '../helpers/gpu';
import { deviceVariants, expectClose, F16_TIGHT_TOL, F32_TOL, nanBuffer, roundF16, uploadWeight, type NamedVariant } from './fixtures';

const EPS = 1e-5;

function rows(a: Float32Array, from: number, count: number, width: number): Float32Array {
  return a.slice(from * width, (from + count) * width);
}

for (const schedule of ['software', 'hardware'] as const) {
  describe(`fused GEMV, ${schedule} schedule`, () => {
    const h = useKernelHarness({ schedule });
    let seed = 900;
    const stored = (v: NamedVariant, a: Float32Array) => (v.dtype === 'f16' ? roundF16(a) : a);
    const tol = (v: NamedVariant) => (v.dtype === 'f16' ? F16_TIGHT_TOL : F32_TOL);
    const entry = schedule === 'software' ? 'gemv_rows' : 'gemv_coop';

    it('runs the schedule it was asked for', () => {
      expect(h.gpu.caps.softwareAdapter).toBe(schedule === 'software');
    });

    // K = 1000 strides past one workgroup; N = 131 / 37 leave partial row blocks; xRow picks the last row.
    const cases = [
      { T: 1, K: 72, Ns: [131], xRows: 3, xRow: 2 },
      { T: 2, K: 64, Ns: [40, 24, 24], xRows: 2, xRow: 0 },
      { T: 1, K: 1000, Ns: [37, 5, 9], xRows: 1, xRow: 0 },
      { T: 1, K: 8, Ns: [3, 1, 1], xRows: 1, xRow: 0 },
    ];

    it('normedProjection: rmsnorm prologue, 1–3 weights side by side, bias, row offset', async () => {
      for (const v of deviceVariants(h, true)) {
        for (const c of cases) {
          const N = c.Ns.reduce((a, b) => a + b, 0);
          const x = randomArray(c.xRows * c.K, seed++, 2);
          const gain = randomArray(c.K, seed++, 1.5);
          const ws = c.Ns.map((n) => randomArray(n * c.K, seed++, 0.5));
          const bias = randomArray(N, seed++, 1);
          const weights = ws.map((w, i) => uploadWeight(h, `w${i}`, w, c.Ns[i], c.K, v.dtype));
          const y = nanBuffer(h, c.T * N);
          const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, c.K, v.dtype), eps: EPS, scratch: nanBuffer(h, c.T * c.K), row: c.xRow };
          await h.run(v.variant, (rec) => normedProjection(rec, input, weights, y, c.T, uploadWeight(h, 'b', bias, 1, N, v.dtype)));
          const normed = rmsNorm(rows(x, c.xRow, c.T, c.K), stored(v, gain), EPS);
          const want = matmul(normed, Float32Array.from(ws.flatMap((w) => [...stored(v, w)])), N, c.K, stored(v, bias));
          expectClose(`${entry} norm ${v.label}`, `T=${c.T} K=${c.K} N=${c.Ns.join('+')} xRow=${c.xRow}`, await h.readF32(y, c.T * N), want, tol(v));
        }
      }
    });

    it('linear with a residual epilogue, a column offset and row-split weights', async () => {
      for (const v of deviceVariants(h, true)) {
        const T = 2, K = 72, N = 131, nTotal = 140, colStart = 6;
        const x = randomArray(T * K, seed++);
        const w = randomArray(N * K, seed++, 0.5);
        const y0 = randomArray(T * nTotal, seed++, 3);
        const y = h.upload(y0);
        await h.run(v.variant, (rec) => linear(rec, h.upload(x), uploadWeight(h, 'w', w, N, K, v.dtype, [50, 81]), y, T, undefined, { residual: true, colStart, nTotal }));
        const prod = matmul(x, stored(v, w), N, K);
        const want = Float32Array.from(y0);
        for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) want[t * nTotal + colStart + n] += prod[t * N + n];
        expectClose(`${entry} residual ${v.label}`, `T=${T} K=${K} N=${N} parts=50/81 in ${nTotal}`, await h.readF32(y, T * nTotal), want, tol(v));
      }
    });

    // T = 5 is a prefill-sized step: rmsnorm, two tiled matmuls and swiglu as their own kernels.
    it('gatedProjection: rmsnorm, gate and up, SwiGLU in one dispatch (decode) or four (prefill)', async () => {
      for (const v of deviceVariants(h, true)) {
        for (const [T, K, F] of [[1, 64, 172], [2, 256, 37], [5, 64, 40]]) {
          const x = randomArray(T * K, seed++, 2);
          const gain = randomArray(K, seed++);
          const wg = randomArray(F * K, seed++, 0.5);
          const wu = randomArray(F * K, seed++, 0.5);
          const out = nanBuffer(h, T * F);
          const input = { x: h.upload(x), gain: uploadWeight(h, 'g', gain, 1, K, v.dtype), eps: EPS, scratch: nanBuffer(h, T * K) };
          await h.run(v.variant, (rec) => gatedProjection(rec, input, uploadWeight(h, 'wg', wg, F, K, v.dtype), uploadWeight(h, 'wu', wu, F, K, v.dtype), out, T, nanBuffer(h, T * F)));
          const normed = rmsNorm(x, stored(v, gain), EPS);
          const want = swiglu(matmul(normed, stored(v, wg), F, K), matmul(normed, stored(v, wu), F, K));
          expectClose(`${entry} swiglu ${v.label}`, `T=${T} K=${K} F=${F}`, await h.readF32(out, T * F), want, tol(v));
        }
      }
    });
  });
}

describe('qkv split + per-head norm + RoPE', () => {
  const h: KernelHarness = useKernelHarness();
  let seed = 1300;

  it('matches rmsnorm per head and applyRope, GQA 1/3, head dims 8/64/128, qk norm on and off', async () => {
    for (const v of deviceVariants(h)) {
      for (const [T, H, Hk, d, qkNorm] of [[1, 8, 4, 8, false], [3, 9, 3, 64, true], [2, 4, 4, 128, true], [5, 2, 2, 8, false]] as Array<[number, number, number, number, boolean]>) {
        const pos0 = 37;
        const width = (H + 2 * Hk) * d;
        const qkv = randomArray(T * width, seed++, 2);
        const qGain = randomArray(d, seed++, 1.5);
        const kGain = randomArray(d, seed++, 1.5);
        const invFreq = Float32Array.from({ length: d / 2 }, (_, i) => Math.pow(10000, (-2 * i) / d));
        const out = { q: nanBuffer(h, T * H * d), k: nanBuffer(h, T * Hk * d), v: nanBuffer(h, T * Hk * d) };
        const norm = qkNorm ? { q: uploadWeight(h, 'qn', qGain, 1, d, v.dtype), k: uploadWeight(h, 'kn', kGain, 1, d, v.dtype), eps: EPS } : undefined;
        await h.run(v.variant, (rec) => splitQkvRope(rec, h.upload(qkv), out, h.upload(invFreq), T, { heads: H, kvHeads: Hk, headDim: d }, norm), pos0, T);
        const part = (from: number, heads: number) => Float32Array.from({ length: T * heads * d }, (_, i) => qkv[Math.floor(i / (heads * d)) * width + from * d + (i % (heads * d))]);
        let q: Float32Array = part(0, H);
        let k: Float32Array = part(H, Hk);
        const vv = part(H + Hk, Hk);
        if (qkNorm) {
          q = rmsNorm(q, v.dtype === 'f16' ? roundF16(qGain) : qGain, EPS);
          k = rmsNorm(k, v.dtype === 'f16' ? roundF16(kGain) : kGain, EPS);
        }
        const positions = Array.from({ length: T }, (_, t) => pos0 + t);
        applyRope(q, positions, invFreq);
        applyRope(k, positions, invFreq);
        const shape = `T=${T} H=${H} Hk=${Hk} d=${d}${qkNorm ? ' qk-norm' : ''}`;
        expectClose(`qkv_split q ${v.label}`, shape, await h.readF32(out.q, T * H * d), q, F32_TOL);
        expectClose(`qkv_split k ${v.label}`, shape, await h.readF32(out.k, T * Hk * d), k, F32_TOL);
        expect(Array.from(await h.readF32(out.v, T * Hk * d))).toEqual(Array.from(vv));
      }
    }
  });
});

