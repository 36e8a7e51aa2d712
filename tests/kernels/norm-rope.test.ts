// rmsNorm / rmsNormInPlace (shaders/rmsnorm.wgsl) and rope (shaders/rope.wgsl) against the CPU reference.
import { describe, it } from 'vitest';
import { rmsNorm, rmsNormInPlace } from '../../src/kernels/norm';
import { rope } from '../../src/kernels/pointwise';
import type { Llama3RopeScaling } from '../../src/model/config';
import { ropeInverseFrequencies } from '../../src/model/rope-frequencies';
import { applyRope, rmsNorm as refRmsNorm } from '../../src/reference/kernels';
import { useKernelHarness, randomArray } from '../helpers/gpu';
import { deviceVariants, expectClose, F16_LOOSE_TOL, F16_TIGHT_TOL, F32_TOL, nanBuffer, roundF16, uploadWeight, type NamedVariant } from './fixtures';

describe('rmsNorm vs reference', () => {
  const h = useKernelHarness();
  let seed = 200;

  /** Rows with different magnitudes, so a norm mixed up between rows shows. */
  function rowsOf(rows: number, n: number): Float32Array {
    const x = randomArray(rows * n, seed++);
    for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) x[r * n + i] *= 0.5 + 3 * r;
    return x;
  }

  function compare(v: NamedVariant, kernel: string, shape: string, got: Float32Array, x: Float32Array, w: Float32Array, eps: number): void {
    if (v.dtype === 'f32') {
      expectClose(`${kernel} ${v.label}`, shape, got, refRmsNorm(x, w, eps), F32_TOL);
    } else {
      expectClose(`${kernel} ${v.label}`, shape, got, refRmsNorm(x, roundF16(w), eps), F16_TIGHT_TOL);
      expectClose(`${kernel} ${v.label} vs f32`, shape, got, refRmsNorm(x, w, eps), F16_LOOSE_TOL);
    }
  }

  // total rows in x, rows normalized, the first of them, width, eps
  const cases: Array<[number, number, number, number, number]> = [
    [5, 5, 0, 131, 1e-5],
    [37, 37, 0, 72, 1e-6],
    [1, 1, 0, 576, 1e-5],
    [5, 1, 4, 131, 1e-5], // final norm of the last row only
    [37, 3, 30, 8, 1e-6],
    [2, 2, 0, 5, 1e-5], // narrower than the workgroup
  ];

  it('block norms with and without a row offset', async () => {
    for (const v of deviceVariants(h)) {
      for (const [total, rows, offset, n, eps] of cases) {
        const x = rowsOf(total, n);
        const w = randomArray(n, seed++, 1.5);
        const xBuf = h.upload(x);
        const yBuf = nanBuffer(h, rows * n);
        const weight = uploadWeight(h, 'norm', w, 1, n, v.dtype);
        await h.run(v.variant, (rec) => rmsNorm(rec, xBuf, weight, yBuf, rows, eps, offset));
        const got = await h.readF32(yBuf, rows * n);
        compare(v, 'rmsnorm', `rows=${rows}/${total} offset=${offset} n=${n}`, got, x.slice(offset * n, (offset + rows) * n), w, eps);
      }
    }
  });

  it('per-head norms in place, head dims 8, 64, 128', async () => {
    for (const v of deviceVariants(h)) {
      for (const [T, heads, d] of [[5, 3, 8], [37, 2, 64], [5, 4, 128], [1, 1, 128]]) {
        const x = rowsOf(T * heads, d);
        const w = randomArray(d, seed++, 1.5);
        const xBuf = h.upload(x);
        const weight = uploadWeight(h, 'qnorm', w, 1, d, v.dtype);
        await h.run(v.variant, (rec) => rmsNormInPlace(rec, xBuf, weight, T * heads, 1e-6));
        const got = await h.readF32(xBuf, x.length);
        compare(v, 'rmsnorm in-place', `T=${T} heads=${heads} d=${d}`, got, x, w, 1e-6);
      }
    }
  });
});

/**
 * RoPE's sin/cos are our own polynomials (lib/trig), f32-accurate on every adapter: WGSL lets cos/sin be 2^-11
 * off, and SwiftShader's were 1.4e-4 off relative; measured ≤ 1.5e-6 up to position 131000 on lavapipe and SwiftShader.
 */
const ROPE_TOL = 4e-6;

describe('rope vs reference applyRope', () => {
  const h = useKernelHarness();
  let seed = 300;

  const llama3: Llama3RopeScaling = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };

  async function check(T: number, heads: number, d: number, pos0: number, theta: number, scaling: Llama3RopeScaling | null = null): Promise<void> {
    const invFreq = ropeInverseFrequencies({ headDim: d, ropeTheta: theta, ropeScaling: scaling });
    const x = randomArray(T * heads * d, seed++, 2);
    const xBuf = h.upload(x);
    const fBuf = h.upload(invFreq);
    // RoPE reads only f32 buffers; the weight dtype must not matter, so use the device's default variant.
    await h.run(deviceVariants(h)[0].variant, (rec) => rope(rec, xBuf, fBuf, T, heads, d), pos0, T);
    const got = await h.readF32(xBuf, x.length);
    const want = x.slice();
    applyRope(want, Array.from({ length: T }, (_, t) => pos0 + t), invFreq);
    const shape = `T=${T} heads=${heads} d=${d} pos0=${pos0} theta=${theta}${scaling ? ' llama3' : ''}`;
    expectClose('rope', shape, got, want, ROPE_TOL);
  }

  it('head dims 8, 64, 128 over a prefill chunk and a decode step', async () => {
    await check(5, 3, 8, 0, 10000);
    await check(37, 2, 64, 0, 10000);
    await check(37, 3, 128, 11, 10000);
    await check(1, 5, 64, 123, 10000);
    await check(1, 2, 128, 4095, 500000, llama3);
    await check(5, 1, 128, 1000, 1000000);
  });

  it('stays accurate at long-context positions (Cody-Waite angle reduction)', async () => {
    await check(5, 2, 64, 30000, 10000);
    await check(3, 1, 128, 131000, 500000, llama3);
  });

  it('splits large dispatches over x and y', async () => {
    // 2048 × 32 heads × 64 pairs = 4,194,304 invocations: just over 64 × 65,535, so the kernel needs a 2-D grid.
    await check(2048, 32, 128, 3, 10000);
  });
});
