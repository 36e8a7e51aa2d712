/**
 * The CPU reference's model of llama.cpp's Q8_1 products (bench/gguf/llama-activations.ts, used by the
 * `cpu reference + llama.cpp activation rounding` rows of bench/results/gguf-agreement*.md): for q4_1 / q5_1
 * weights, the rounded input's product plus q8_1SumCorrection equals ggml's x86 vec_dot_q{4,5}_1_q8_1 written
 * out from the block bytes (d_w · d_a · Σ q_w q_a per block, plus m · s with s = f16(d · Σ q_a)), and the
 * rounded input alone does not.
 */
import { describe, expect, it } from 'vitest';
import { blockMins, q8_1SumCorrection } from '../bench/gguf/llama-activations';
import { dequantize, f16ToF32, f32ToF16 } from '../src/reference/ggml-blocks';
import { quantize } from '../src/reference/ggml-quantize';
import { roundHalfEven, roundInput } from '../src/reference/input-rounding';
import { matmul } from '../src/reference/kernels';
import { mulberry32 } from '../src/reference/mulberry32';

const f = Math.fround;
const half = (b: Uint8Array, o: number) => f16ToF32(b[o] | (b[o + 1] << 8));

/** The unsigned quant j (0 .. 31) of the q4_1 / q5_1 block at byte o. */
function quant(type: 'q4_1' | 'q5_1', b: Uint8Array, o: number, j: number): number {
  const qs = o + (type === 'q4_1' ? 4 : 8);
  const lo = j < 16 ? b[qs + j] & 0xf : b[qs + j - 16] >> 4;
  if (type === 'q4_1') return lo;
  const qh = (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) >>> 0;
  return lo | (((qh >>> j) & 1) << 4);
}

/** y [T, rows] as ggml's AVX2 quantize_row_q8_1 + vec_dot_q{4,5}_1_q8_1 compute it (in f64 apart from the stored f16s). */
function llamaProduct(type: 'q4_1' | 'q5_1', bytes: Uint8Array, x: Float32Array, rows: number, cols: number): Float64Array {
  const nb = cols / 32;
  const blockBytes = type === 'q4_1' ? 20 : 24;
  const T = x.length / cols;
  const y = new Float64Array(T * rows);
  for (let t = 0; t < T; t++) {
    const qa: number[][] = [];
    const da: number[] = [];
    const sa: number[] = [];
    for (let b = 0; b < nb; b++) {
      const blk = Array.from(x.subarray(t * cols + b * 32, t * cols + b * 32 + 32));
      const amax = Math.max(...blk.map(Math.abs));
      const d = f(amax / 127);
      const id = amax ? f(127 / amax) : 0;
      const q = blk.map((v) => roundHalfEven(f(v * id)));
      qa.push(q);
      da.push(f16ToF32(f32ToF16(d)));
      sa.push(f16ToF32(f32ToF16(f(d * q.reduce((s, v) => s + v, 0)))));
    }
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let b = 0; b < nb; b++) {
        const o = (r * nb + b) * blockBytes;
        let isum = 0;
        for (let j = 0; j < 32; j++) isum += quant(type, bytes, o, j) * qa[b][j];
        acc += half(bytes, o) * da[b] * isum + half(bytes, o + 2) * sa[b];
      }
      y[t * rows + r] = acc;
    }
  }
  return y;
}

describe('llama.cpp Q8_1 products in the CPU reference', () => {
  for (const type of ['q4_1', 'q5_1'] as const) {
    it(`${type}: rounded input + q8_1SumCorrection = vec_dot_${type}_q8_1; the rounded input alone is further off`, () => {
      const rand = mulberry32(type === 'q4_1' ? 11 : 12);
      const rows = 7;
      const cols = 96;
      const T = 3;
      // Weights mostly of one sign in places, so that the min term is large (as in real rows).
      const wf = Float32Array.from({ length: rows * cols }, (_, i) => (rand() - 0.5) * 0.2 + (i % 64 < 32 ? 0.15 : -0.05));
      const x = Float32Array.from({ length: T * cols }, () => (rand() - 0.3) * 3);
      const bytes = quantize(type, wf, rows, cols);
      const w = dequantize(type, bytes, rows, cols);
      const want = llamaProduct(type, bytes, x, rows, cols);
      const plain = matmul(roundInput('q8_0', x, cols), w, rows, cols);
      const corrected = Float32Array.from(plain);
      q8_1SumCorrection(new Map([[w, blockMins(bytes, type === 'q4_1' ? 20 : 24, rows * (cols / 32))]]))(corrected, x, w, rows, cols);
      const err = (y: Float32Array) => Math.max(...Array.from(y, (v, i) => Math.abs(v - want[i]) / (Math.abs(want[i]) + 1e-3)));
      // f32 sums in another order than ggml's: a few ULPs of each product.
      expect(err(corrected)).toBeLessThan(4e-6);
      expect(err(plain)).toBeGreaterThan(4 * err(corrected));
    });
  }
});
