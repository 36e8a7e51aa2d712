// ggml block-quantized weights read in place by the kernels (shaders/lib/ggml_blocks.wgsl), for every
// QuantType: both readers (wq_group32 through embed `main`, wq_vec4 through `gather_vec4`) bit for bit
// against the CPU `dequantize`, the embedding gather bit for bit, and the tiled prefill matmul against the
// reference matmul of the CPU-dequantized weights. The decode GEMV is in ggml-gemv.test.ts.
import { describe, expect, it } from 'vitest';
import { BufferGroup } from '../../src/gpu/buffers';
import { QUANT_TYPES, type QuantType } from '../../src/gpu/block-types';
import { Recorder } from '../../src/gpu/plan';
import type { WeightMatrix } from '../../src/gpu/tensor';
import { linear } from '../../src/kernels/linear';
import { embed, weightVariant } from '../../src/kernels/pointwise';
import { dequantize } from '../../src/reference/ggml-blocks';
import { quantize } from '../../src/reference/ggml-quantize';
import { embed as refEmbed, matmul } from '../../src/reference/kernels';
import { randomArray, useKernelHarness } from '../helpers/gpu';
import { deviceVariants, expectClose, F32_TOL, nanBuffer, roundF16, uploadWeight } from './fixtures';
import { gaussianArray, quantWeights, randomBlocks, testCols, uploadQuantWeight } from './quant-fixtures';

/**
 * Tiled matmul vs the reference matmul of the same dequantized f32 weights: only the order of the f32 sums
 * differs (max error relative to max(1, max |y|); measured ≤ 7e-7).
 */
const TOL = F32_TOL;

function expectBitExact(what: string, got: Float32Array, want: Float32Array): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let first = -1;
  for (let i = 0; i < w.length && first < 0; i++) if (g[i] !== w[i]) first = i;
  expect(first, `${what}: first differing element ${first} (${got[first]} vs ${want[first]})`).toBe(-1);
  expect(g.length).toBe(w.length);
}

describe('ggml blocks: GPU readers bit for bit, embedding gather', () => {
  const h = useKernelHarness();
  const f32 = () => deviceVariants(h)[0].variant;

  async function gatherAll(type: QuantType, w: WeightMatrix, entry: 'main' | 'gather_vec4'): Promise<Float32Array> {
    const ids = h.upload(Uint32Array.from({ length: w.rows }, (_, i) => i));
    const out = nanBuffer(h, w.rows * w.cols);
    await h.run(f32(), (rec) => {
      if (entry === 'main') return embed(rec, ids, w, out, w.rows);
      const pipeline = rec.pipelines.get({ shader: 'embed', entry, variant: weightVariant(rec.variant, type) });
      rec.dispatch('gather_vec4', pipeline, { 0: rec.uniforms.alloc([w.cols, 0, w.rows, w.rows]), 1: ids, 2: w.parts[0].buffer, 3: out }, [Math.ceil(w.cols / 64), w.rows, 1]);
    });
    return h.readF32(out, w.rows * w.cols);
  }

  // 5 rows of 32·3 or 256·3 elements: rows of q4_0, q5_0, q8_0 and q6_k start at both word alignments.
  // Random blocks take every finite f16 scale, subnormals included.
  it('wq_group32 and wq_vec4 match dequantize exactly, random blocks and quantized data', async () => {
    for (const type of QUANT_TYPES) {
      const cols = testCols(type, 0) === 256 ? 768 : 96;
      for (const [label, bytes] of [
        ['random', randomBlocks(type, 5, cols, 31, 0, 30)],
        ['quantized', quantize(type, gaussianArray(5 * cols, 32, 0.1), 5, cols)],
      ] as const) {
        const want = dequantize(type, bytes, 5, cols);
        const w = uploadQuantWeight(h, type, bytes, 5, cols, type);
        expectBitExact(`${type} ${label} wq_group32`, await gatherAll(type, w, 'main'), want);
        expectBitExact(`${type} ${label} wq_vec4`, await gatherAll(type, w, 'gather_vec4'), want);
      }
    }
  });

  it('embed gathers quantized rows from whole and reversed row-split tables, exactly', async () => {
    const ids = [0, 36, 9, 10, 11, 9, 26, 27, 36, 0];
    for (const type of QUANT_TYPES) {
      const D = testCols(type, 0);
      const { bytes, values } = quantWeights(type, 37, D, 50, false);
      for (const parts of [undefined, [10, 17, 10]]) {
        const table = uploadQuantWeight(h, 'embed', bytes, 37, D, type, parts);
        if (parts) table.parts.reverse();
        const out = nanBuffer(h, ids.length * D);
        await h.run(f32(), (rec) => embed(rec, h.upload(Uint32Array.from(ids)), table, out, ids.length), 0, ids.length);
        expectClose(`embed ${type}`, `V=37 D=${D} T=${ids.length}${parts ? ' parts=10/17/10 reversed' : ''}`, await h.readF32(out, ids.length * D), refEmbed(values, ids, D), 0);
      }
    }
  });

  it('rejects quantized rows that are not whole blocks', () => {
    const device = h.gpu.device;
    const rec = new Recorder(device, h.pipelines, h.gpu.caps, f32(), h.step, new BufferGroup(device, 'plan'));
    const w: WeightMatrix = { name: 'bad', rows: 4, cols: 128, dtype: 'q4_k', parts: [{ buffer: h.empty(1024), rowStart: 0, rows: 4 }] };
    expect(() => linear(rec, h.empty(1024), w, h.empty(64), 1)).toThrow(/q4_k rows must be a whole number of 256-element blocks/);
    expect(() => embed(rec, h.empty(16), w, h.empty(2048), 1)).toThrow(RangeError);
    rec.owner.destroy();
  });
});

describe('quantized tiled matmul (prefill)', () => {
  const h = useKernelHarness();
  let seed = 9000;

  // T = 3, 33, 70: one, two (partial) and three token tiles; N = 37 / 131 leave partial row tiles. Every
  // case has bias and residual, so that each type is one pipeline (lavapipe compiles each in ~2 s).
  it('matches the reference matmul of the dequantized weights: bias, residual, row-split parts', async () => {
    for (const type of QUANT_TYPES) {
      // q4_k also with an f16 bias (the model's float type) where the device has shader-f16.
      for (const v of type === 'q4_k' ? deviceVariants(h) : deviceVariants(h).slice(0, 1)) {
        for (const [T, K, N, parts] of [[3, testCols(type, 1), 37, undefined], [33, testCols(type, 0), 131, [64, 40, 27]], [70, testCols(type, 0), 37, [1, 36]]] as Array<[number, number, number, number[] | undefined]>) {
          const x = randomArray(T * K, seed++);
          const w = quantWeights(type, N, K, seed++, T !== 33);
          const bias = randomArray(N, seed++, 2);
          const y0 = randomArray(T * N, seed++, 3);
          const y = h.upload(y0);
          await h.run(v.variant, (rec) => linear(rec, h.upload(x), uploadQuantWeight(h, 'w', w.bytes, N, K, type, parts), y, T, uploadWeight(h, 'b', bias, 1, N, v.dtype), { residual: true }), 0, T);
          const want = matmul(x, w.values, N, K, v.dtype === 'f16' ? roundF16(bias) : bias);
          want.forEach((_, i) => (want[i] += y0[i]));
          const shape = `T=${T} K=${K} N=${N} +bias${parts ? ` parts=${parts.join('/')}` : ''} residual`;
          expectClose(`matmul tiled ${type} ${v.label}`, shape, await h.readF32(y, T * N), want, TOL);
        }
      }
    }
  });
});
