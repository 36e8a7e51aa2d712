/**
 * On-load quantization of float weights (safetensors, or F32/F16 tensors of a GGUF file) into ggml block
 * formats, in the worker before upload (JS, one thread): the GPU only ever holds the blocks.
 *   q8: Q8_0 (8.5 bits per weight).
 *   q4: 4.5 bits per weight, Q4_K where a row is whole 256-element super-blocks and Q4_0 otherwise. At equal
 *       bytes Q4_K loses less (byte-llama-12l on held-out Dracula: KL mean 0.00194 vs 0.00247, p99 0.0133 vs
 *       0.0186; bench/results/weight-quant.md) but quantizes about 30× slower (≈ 480 vs 14 ns per weight here).
 * Matrices whose rows are not whole 32-element blocks stay in the float dtype; vectors (norms, biases) are
 * never quantized. The quantizers are the ports of ggml's reference quantizers in src/reference/, the same
 * code the tests check against ggml's bytes, so they are used from there rather than copied.
 */
import { BLOCK, type QuantType } from '../gpu/block-types';
import { quantize } from '../reference/ggml-quantize';

/** The user's choice of on-load weight quantization. */
export type OnLoadQuant = 'q8' | 'q4';

/** Which q4 format to use where both fit (set from the equal-bytes comparison). */
export const Q4_PREFERRED: QuantType = 'q4_k';

/** The block type a [*, cols] matrix gets under `choice`, or null when its rows do not split into blocks. */
export function onLoadQuantType(choice: OnLoadQuant, cols: number, preferredQ4: QuantType = Q4_PREFERRED): QuantType | null {
  const candidates: QuantType[] = choice === 'q8' ? ['q8_0'] : [preferredQ4, 'q4_0'];
  return candidates.find((t) => cols % BLOCK[t].elems === 0) ?? null;
}

/** Quantize one matrix of f32 values, or return null when it stays in floats. */
export function quantizeOnLoad(choice: OnLoadQuant, values: Float32Array, rows: number, cols: number): { type: QuantType; bytes: Uint8Array } | null {
  const type = onLoadQuantType(choice, cols);
  if (!type) return null;
  return { type, bytes: quantize(type, values, rows, cols) };
}
