/**
 * llama.cpp's input rounding on the GPU (shaders/round_input.wgsl; CPU reference src/reference/input-rounding.ts):
 * the input of a product rounded in place to what llama.cpp's CPU back end multiplies for the weight's type
 * (8-bit blocks for quantized weights, f16 for f16 weights), so that GGUF files give llama.cpp's numbers.
 * Q8_1 (for q4_1 / q5_1 weights) also writes each block's sum term for the products' min term (min-term.ts).
 */
import { flatDispatch, type Recorder } from '../gpu/plan';
import { ROUNDING_BLOCK, type InputRounding } from '../gpu/block-types';
import { q8_1Sums } from './min-term';

/** The shader's MODE per rounding; q8_1 is q8_0's mode with the Q8_1 flag (its block sums besides). */
const MODE: Record<InputRounding, number> = { q8_0: 0, q8_1: 0, q8_k: 1, f16: 2, bf16: 3 };

/** x[0 .. n) rounded in place as `rounding` (rows of x are whole blocks of it). */
export function roundInputInPlace(rec: Recorder, x: GPUBuffer /* f32 [rows, cols] */, rounding: InputRounding, n: number): void {
  const block = ROUNDING_BLOCK[rounding];
  if (n % block !== 0) throw new RangeError(`input rounding ${rounding}: ${n} elements are not whole blocks of ${block}`);
  const q8_1 = rounding === 'q8_1';
  const variant = q8_1 ? { ...rec.variant, flags: { ...(rec.variant.flags ?? {}), Q8_1: true } } : rec.variant;
  const pipeline = rec.pipelines.get({ shader: 'round_input', variant, overrides: { MODE: MODE[rounding] } });
  const { workgroups, groupsPerRow } = flatDispatch(Math.ceil(n / block / 64), rec.caps.maxComputeWorkgroupsPerDimension);
  const params = rec.uniforms.struct({ n, row_stride: groupsPerRow * 64 });
  rec.dispatch(`round_input ${rounding}`, pipeline, q8_1 ? { 0: params, 1: x, 2: q8_1Sums(rec, n / block) } : { 0: params, 1: x }, workgroups);
}
