/**
 * ggml's block-quantized tensor types, as they sit in GGUF files and (unchanged) on the GPU. A row of
 * `cols` elements is `cols / elems` blocks of `bytes` bytes each, back to back; blocks are not padded, so a
 * row of a 34-byte Q8_0 type starts at any byte offset. Kernels read them as u32 words
 * (shaders/lib/ggml_blocks.wgsl); src/reference/ggml-blocks.ts is the CPU reference.
 */

/** Block-quantized weight types the kernels read in place. */
export const QUANT_TYPES = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k'] as const;
export type QuantType = (typeof QUANT_TYPES)[number];

/** Storage dtype of a weight on the GPU: plain floats, or ggml blocks. */
export type WeightDtype = 'f32' | 'f16' | QuantType;

/** Elements and bytes of one block. */
export interface BlockShape {
  elems: number;
  bytes: number;
}

/** Block shapes, from ggml-common.h (QK4_0 = QK8_0 = 32, QK_K = 256). */
export const BLOCK: Record<QuantType, BlockShape> = {
  q4_0: { elems: 32, bytes: 18 }, // f16 d, 16 B nibbles
  q4_1: { elems: 32, bytes: 20 }, // f16 d, f16 m, 16 B nibbles
  q5_0: { elems: 32, bytes: 22 }, // f16 d, u32 qh, 16 B nibbles
  q5_1: { elems: 32, bytes: 24 }, // f16 d, f16 m, u32 qh, 16 B nibbles
  q8_0: { elems: 32, bytes: 34 }, // f16 d, 32 × i8
  q4_k: { elems: 256, bytes: 144 }, // f16 d, f16 dmin, 12 B scales, 128 B nibbles
  q5_k: { elems: 256, bytes: 176 }, // f16 d, f16 dmin, 12 B scales, 32 B qh, 128 B nibbles
  q6_k: { elems: 256, bytes: 210 }, // 128 B ql, 64 B qh, 16 × i8 scales, f16 d
};

/** ggml type ids (enum ggml_type) of the types this engine reads, GGUF's tensor-info `type` field. */
export const GGML_TYPE_IDS = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q5_0: 6, q5_1: 7, q8_0: 8, q4_k: 12, q5_k: 13, q6_k: 14, bf16: 30,
} as const;
export type GgmlTypeName = keyof typeof GGML_TYPE_IDS;

/** Whether a ggml type name (GGUF's f32/f16/bf16 included) is one of the block types. */
export function isBlockType(name: string): name is QuantType {
  return Object.prototype.hasOwnProperty.call(BLOCK, name);
}

/** Whether a dtype is block-quantized. */
export function isQuant(dtype: WeightDtype): dtype is QuantType {
  return dtype !== 'f32' && dtype !== 'f16';
}

/** Bytes of one row of `cols` elements in `dtype` (cols must be a whole number of blocks for quant types). */
export function rowBytes(dtype: WeightDtype, cols: number): number {
  if (dtype === 'f32') return cols * 4;
  if (dtype === 'f16') return cols * 2;
  const b = BLOCK[dtype];
  if (cols % b.elems !== 0) throw new RangeError(`${dtype} rows need a multiple of ${b.elems} elements, got ${cols}`);
  return (cols / b.elems) * b.bytes;
}

/**
 * How the input of a product is rounded first, as llama.cpp's CPU back end does before multiplying by a weight
 * (its type's `vec_dot_type`): 8-bit blocks of 32 (Q8_0/Q8_1) or 256 (Q8_K), or f16 / bf16 elements.
 * shaders/round_input.wgsl applies it; src/reference/input-rounding.ts is its CPU reference.
 */
export type InputRounding = 'q8_0' | 'q8_1' | 'q8_k' | 'f16' | 'bf16';

/** Elements per block of each rounding (1: elementwise). */
export const ROUNDING_BLOCK: Record<InputRounding, number> = { q8_0: 32, q8_1: 32, q8_k: 256, f16: 1, bf16: 1 };

/**
 * The input rounding llama.cpp's CPU back end applies before a product with a weight stored as `type`; none for
 * f32. Q4_1/Q5_1 take Q8_1: Q8_0's values, and each block's sum s = f16(d · Σq) besides, on which llama.cpp
 * takes the weights' min term (m · s); no rounding of the elements gives that term, so the product adds
 * Σ_b m_b · (s_b − Σ_b x) after (src/kernels/min-term.ts).
 */
export function llamaInputRounding(type: GgmlTypeName): InputRounding | undefined {
  if (type === 'f32') return undefined;
  if (type === 'q4_1' || type === 'q5_1') return 'q8_1';
  if (type === 'f16' || type === 'bf16') return type;
  return type === 'q4_k' || type === 'q5_k' || type === 'q6_k' ? 'q8_k' : 'q8_0';
}
