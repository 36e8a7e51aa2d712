/**
 * The CPU reference's model of llama.cpp's Q8_1 products (bench/gguf/llama-activations.ts, used by the
 * `cpu reference + llama.cpp activation rounding` rows of bench/results/gguf-agreement*.md): for q4_1 / q5_1
 * weights, the rounded input's product plus q8_1SumCorrection equals ggml's x86 vec_dot_q{4,5}_1_q8_1 written
 * out from the block bytes (d_w · d_a · Σ q_w q_a per block, plus m · s with s = f16(d · Σ q_a)), and the
 * rounded input alone does not.
 */
import { describe, expect, it } from 'vitest';
import { blockMins, q8_1SumCorrection } from '../bench/gguf/llama-activations';
import { BLOCK } from '../src/gpu/block-types';
import { dequantize } from '../src/reference/ggml-blocks';
import { quantize } from '../src/reference/ggml-quantize';
import { roundInput } from '../src/reference/input-rounding';
import { llamaQ8_1Product } from './helpers/llama-q8_1';
import { matmul } from '../src/reference/kernels';
import { mulberry32 } from '../src/reference/mulberry32';

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
      const want = llamaQ8_1Product(type, bytes, x, rows, cols);
      const plain = matmul(roundInput('q8_0', x, cols), w, rows, cols);
      const corrected = Float32Array.from(plain);
      q8_1SumCorrection(new Map([[w, blockMins(bytes, BLOCK[type].bytes, rows * (cols / 32))]]))(corrected, x, w, rows, cols);
      const err = (y: Float32Array) => Math.max(...Array.from(y, (v, i) => Math.abs(v - want[i]) / (Math.abs(want[i]) + 1e-3)));
      // f32 sums in another order than ggml's: a few ULPs of each product.
      expect(err(corrected)).toBeLessThan(4e-6);
      expect(err(plain)).toBeGreaterThan(4 * err(corrected));
    });
  }
});
