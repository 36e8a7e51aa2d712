// linear (shaders/matmul.wgsl gemv + tiled) against reference matmul: odd shapes, bias, row-split weights, f16, subgroups.
import { describe, expect, it } from 'vitest';
import { linear } from '../../src/kernels/linear';
import { matmul } from '../../src/reference/kernels';
import { useKernelHarness, randomArray } from '../helpers/gpu';
import { deviceVariants, expectClose, F16_LOOSE_TOL, F16_TIGHT_TOL, F32_TOL, nanBuffer, roundF16, uploadWeight, type NamedVariant } from './fixtures';

interface Case {
  T: number;
  K: number;
  N: number;
  bias: boolean;
  /** Row counts of the weight's parts (one part when absent). */
  parts?: number[];
}

describe('linear vs reference matmul', () => {
  const h = useKernelHarness();
  let seed = 100;

  async function check(v: NamedVariant, c: Case, path: 'gemv' | 'tiled'): Promise<void> {
    const x = randomArray(c.T * c.K, seed++);
    const w = randomArray(c.N * c.K, seed++, 0.5);
    const b = c.bias ? randomArray(c.N, seed++, 2) : undefined;
    const weight = uploadWeight(h, 'w', w, c.N, c.K, v.dtype, c.parts);
    const bias = b ? uploadWeight(h, 'b', b, 1, c.N, v.dtype) : undefined;
    const xBuf = h.upload(x);
    const yBuf = nanBuffer(h, c.T * c.N);
    await h.run(v.variant, (rec) => linear(rec, xBuf, weight, yBuf, c.T, bias), 0, c.T);
    const got = await h.readF32(yBuf, c.T * c.N);
    const shape = `T=${c.T} K=${c.K} N=${c.N}${c.bias ? ' +bias' : ''}${c.parts ? ` parts=${c.parts.join('/')}` : ''}`;
    const kernel = `matmul ${path} ${v.label}`;
    if (v.dtype === 'f32') {
      expectClose(kernel, shape, got, matmul(x, w, c.N, c.K, b), F32_TOL);
    } else {
      expectClose(kernel, shape, got, matmul(x, roundF16(w), c.N, c.K, b && roundF16(b)), F16_TIGHT_TOL);
      expectClose(`${kernel} vs f32`, shape, got, matmul(x, w, c.N, c.K, b), F16_LOOSE_TOL);
    }
  }

  // GEMV runs when T <= 2 and K % 4 == 0. N = 131 leaves a partial 4-row block; parts of 50/81 rows
  // start blocks mid-matrix; K = 1000 exercises the vec4 stride loop past one workgroup's 256 values.
  const gemvCases: Case[] = [
    { T: 1, K: 72, N: 131, bias: false },
    { T: 2, K: 72, N: 131, bias: true },
    { T: 1, K: 1000, N: 37, bias: true },
    { T: 2, K: 8, N: 5, bias: false },
    { T: 1, K: 72, N: 131, bias: true, parts: [50, 81] },
    { T: 2, K: 64, N: 131, bias: false, parts: [3, 64, 64] },
  ];
  // The tiled path: T > 2, or K not a multiple of 4 (then even T = 1 takes it).
  const tiledCases: Case[] = [
    { T: 5, K: 72, N: 131, bias: false },
    { T: 37, K: 72, N: 131, bias: true },
    { T: 1, K: 75, N: 131, bias: true },
    { T: 37, K: 75, N: 33, bias: false },
    { T: 33, K: 16, N: 32, bias: false },
    { T: 5, K: 72, N: 131, bias: true, parts: [64, 40, 27] },
    { T: 37, K: 75, N: 131, bias: false, parts: [1, 100, 30] },
  ];

  it('gemv, every weight dtype with and without subgroups', async () => {
    const variants = deviceVariants(h, true);
    expect(variants.length).toBeGreaterThan(0);
    for (const v of variants) for (const c of gemvCases) await check(v, c, 'gemv');
  });

  it('tiled, every weight dtype', async () => {
    for (const v of deviceVariants(h)) for (const c of tiledCases) await check(v, c, 'tiled');
  });

  it('gemv spreads row blocks over z when they exceed the per-dimension workgroup limit', async () => {
    const max = h.gpu.caps.maxComputeWorkgroupsPerDimension;
    const N = 4 * max + 7;
    for (const v of deviceVariants(h, true).filter((n) => n.dtype === 'f32')) {
      await check(v, { T: 1, K: 4, N, bias: true }, 'gemv');
    }
  });
});
