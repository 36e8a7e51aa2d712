/**
 * CPU reference of llama.cpp's input rounding (shaders/round_input.wgsl): before a product with a weight of a
 * given ggml type, llama.cpp's CPU back end converts the input row to that type's `vec_dot_type` and
 * multiplies in that form. The value each element then stands for is what these functions return:
 *   q8_0: blocks of 32 (Q8_0, for Q4_0/Q5_0/Q8_0 weights), as the x86
 *         AVX/AVX2 quantize_row_q8_0: amax over the block, d = amax / 127 stored as f16, id = 127 / amax,
 *         q = round_half_even(x · id); the value is q · f16(d).
 *   q8_1: blocks of 32 (Q8_1, for Q4_1/Q5_1 weights), as the x86 quantize_row_q8_1: q8_0's values; the block's
 *         sum s = f16(d · Σq) with the f32 d = amax / 127, on which llama.cpp takes the weights' min term,
 *         comes from q8_1SumDeltas as s − Σ (the block's rounded values).
 *   q8_k: blocks of 256 (the K-quants), as quantize_row_q8_K_ref: max = the element of largest |x|,
 *         iscale = −127 / max, q = min(127, nearest_int(iscale · x)), d = 1 / iscale (f32); the value is q · d.
 *   f16 / bf16: each element rounded to nearest even (f16/bf16 weights); f32 weights take x as it is.
 * An all-zero block stays zero. Rows are `cols` long and start on a block boundary.
 */
import { ROUNDING_BLOCK, type InputRounding } from '../gpu/block-types';
import { f16ToF32, f32ToF16 } from './ggml-blocks';

const f = Math.fround;

/** Round half to even (ggml's nearest_int, _mm256_round_ps with _MM_ROUND_NEAREST). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function roundBlockQ8_0(x: Float32Array, out: Float32Array, b: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
  const d = f16ToF32(f32ToF16(f(amax / 127)));
  const id = amax ? f(127 / amax) : 0;
  for (let j = 0; j < 32; j++) out[b + j] = f(roundHalfEven(f(x[b + j] * id)) * d);
}

function roundBlockQ8_K(x: Float32Array, out: Float32Array, b: number): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 256; j++) {
    const ax = Math.abs(x[b + j]);
    if (ax > amax) {
      amax = ax;
      max = x[b + j];
    }
  }
  if (!amax) return;
  const iscale = f(-127 / max);
  const d = f(1 / iscale);
  for (let j = 0; j < 256; j++) out[b + j] = f(Math.min(127, roundHalfEven(f(iscale * x[b + j]))) * d);
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** f32 → bf16 → f32, round to nearest even (ggml's GGML_FP32_TO_BF16; NaN stays NaN). */
function roundBf16(v: number): number {
  scratch[0] = v;
  const u = scratchBits[0];
  if ((u & 0x7fffffff) > 0x7f800000) return v;
  scratchBits[0] = (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return scratch[0];
}

/** x [rows, cols] rounded as llama.cpp rounds the input of a product (see the header); a new array. */
export function roundInput(rounding: InputRounding, x: Float32Array, cols: number): Float32Array {
  const block = ROUNDING_BLOCK[rounding];
  if (cols % block !== 0 || x.length % cols !== 0) throw new RangeError(`roundInput ${rounding}: rows of ${cols} are not whole blocks of ${block}`);
  const out = new Float32Array(x.length);
  if (rounding === 'f16') for (let i = 0; i < x.length; i++) out[i] = f16ToF32(f32ToF16(x[i]));
  else if (rounding === 'bf16') for (let i = 0; i < x.length; i++) out[i] = roundBf16(x[i]);
  else if (rounding === 'q8_0' || rounding === 'q8_1') for (let b = 0; b < x.length; b += 32) roundBlockQ8_0(x, out, b);
  else for (let b = 0; b < x.length; b += 256) roundBlockQ8_K(x, out, b);
  return out;
}

/**
 * Per block of 32 of x (unrounded), Q8_1's block sum s = f16(d · Σq) less the sum of the block's rounded values
 * (f16(d) · Σq): what a product with a q4_1 / q5_1 weight adds as m_b · delta_b so that its min term is
 * llama.cpp's m · s. f32 [x.length / 32].
 */
export function q8_1SumDeltas(x: Float32Array): Float32Array {
  if (x.length % 32 !== 0) throw new RangeError(`q8_1SumDeltas: ${x.length} elements are not whole blocks of 32`);
  const out = new Float32Array(x.length / 32);
  for (let b = 0; b < out.length; b++) {
    const o = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
    if (!amax) continue;
    const d = f(amax / 127);
    const id = f(127 / amax);
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += roundHalfEven(f(x[o + j] * id));
    out[b] = f(f16ToF32(f32ToF16(f(d * sum))) - f16ToF32(f32ToF16(d)) * sum);
  }
  return out;
}
