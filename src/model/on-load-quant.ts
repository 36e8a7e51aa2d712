/**
 * On-load quantization of float weights (safetensors, or F32/F16 tensors of a GGUF file) into ggml block
 * formats, in the worker before upload (JS, one thread): the GPU only ever holds the blocks.
 *   q8: Q8_0 (8.5 bits per weight) for every matrix.
 *   q4: llama.cpp's Q4_K_M choice of which matrices get more bits, with 4-bit fallbacks for short rows:
 *       - the output matrix (or the tied embedding) and attn_v / ffn_down in the first and last eighth of the
 *         layers and every third one between (`useMoreBits`): Q6_K where a row is whole 256-element
 *         super-blocks, else Q5_0;
 *       - every other matrix: Q4_K where a row is whole super-blocks, else Q4_0 (4.5 bits).
 *       Measured at equal bytes (bench/results/weight-quant.md, CPU reference over 512 tokens): the mix takes
 *       4.58 / 4.66 bits per weight on byte-llama-12l / stories260k and loses less than Q4_K/Q4_0 everywhere
 *       (4.5 bits) and than Q4_1 (5 bits): KL mean 0.00068 vs 0.00194 and 0.00225 on byte-llama-12l. llama.cpp
 *       falls back to Q5_0 / Q8_0 for rows that are not whole super-blocks; we fall back to Q4_0 / Q5_0, which
 *       keeps SmolLM2-135M's 576-wide rows at 0.31× the f16 bytes instead of its file's 0.385×.
 *       Q4_K quantizes about 30× slower than Q4_0 in JS (≈ 480 vs 14 ns per weight).
 * Matrices whose rows are not whole 32-element blocks stay in the float dtype; vectors (norms, biases) are
 * never quantized. The quantizers are the ports of ggml's reference quantizers in src/reference/, the same
 * code the tests check against ggml's bytes, so they are used from there rather than copied.
 */
import { BLOCK, type QuantType } from '../gpu/block-types';
import { quantize } from '../reference/ggml-quantize';
import { EMBED_TOKENS, LM_HEAD } from './tensor-names';

/** The user's choice of on-load weight quantization. */
export type OnLoadQuant = 'q8' | 'q4';

/** Block types in order of preference (a matrix takes the first its rows fit), per choice and sensitivity. */
const TYPES: Record<OnLoadQuant, { plain: QuantType[]; sensitive: QuantType[] }> = {
  q8: { plain: ['q8_0'], sensitive: ['q8_0'] },
  q4: { plain: ['q4_k', 'q4_0'], sensitive: ['q6_k', 'q5_0'] },
};

/** llama.cpp's use_more_bits(i, n): the layers Q4_K_M gives more bits for attn_v and ffn_down (C++ integer division). */
export function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8);
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

/**
 * Whether the matrix named `hfName` is one llama.cpp's Q4_K_M stores with more bits: the output matrix (the
 * embedding when tied), and v_proj / down_proj in the `useMoreBits` layers.
 */
export function isSensitiveMatrix(hfName: string, config: { numLayers: number; tieEmbeddings: boolean }): boolean {
  if (hfName === LM_HEAD || (config.tieEmbeddings && hfName === EMBED_TOKENS)) return true;
  const layer = /^model\.layers\.(\d+)\.(?:self_attn\.v_proj|mlp\.down_proj)\.weight$/.exec(hfName);
  return !!layer && useMoreBits(Number(layer[1]), config.numLayers);
}

/** The block type a [*, cols] matrix gets under `choice`, or null when its rows do not split into blocks. */
export function onLoadQuantType(choice: OnLoadQuant, cols: number, sensitive = false): QuantType | null {
  const candidates = sensitive ? TYPES[choice].sensitive : TYPES[choice].plain;
  return candidates.find((t) => cols % BLOCK[t].elems === 0) ?? null;
}

/** Quantize one matrix of f32 values, or return null when it stays in floats. */
export function quantizeOnLoad(choice: OnLoadQuant, values: Float32Array, rows: number, cols: number, sensitive = false): { type: QuantType; bytes: Uint8Array } | null {
  const type = onLoadQuantType(choice, cols, sensitive);
  if (!type) return null;
  return { type, bytes: quantize(type, values, rows, cols) };
}
