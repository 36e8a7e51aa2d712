/**
 * llama.cpp's product of a q4_1 / q5_1 weight with its Q8_1 input, written out from the block bytes as ggml's
 * x86 quantize_row_q8_1 and vec_dot_q{4,5}_1_q8_1 compute it: per block d_w · d_a · Σ q_w q_a + m · s, with
 * s = f16(d · Σ q_a) (in f64 apart from the stored f16s). The oracle of tests/llama-q8_1.test.ts (CPU reference)
 * and tests/kernels/input-rounding.test.ts (GPU products).
 */
import { BLOCK } from '../../src/gpu/block-types';
import { f16ToF32, f32ToF16 } from '../../src/reference/ggml-blocks';
import { roundHalfEven } from '../../src/reference/input-rounding';

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
export function llamaQ8_1Product(type: 'q4_1' | 'q5_1', bytes: Uint8Array, x: Float32Array, rows: number, cols: number): Float64Array {
  const nb = cols / 32;
  const blockBytes = BLOCK[type].bytes;
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
