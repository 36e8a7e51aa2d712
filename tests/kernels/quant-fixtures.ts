/** Test helpers for ggml block-quantized weights: upload (word padded, row split), random blocks, test data. */
import { BLOCK, rowBytes, type QuantType } from '../../src/gpu/block-types';
import type { WeightMatrix } from '../../src/gpu/tensor';
import { dequantize } from '../../src/reference/ggml-blocks';
import { quantize } from '../../src/reference/ggml-quantize';
import type { KernelHarness } from '../helpers/gpu';

/**
 * `bytes` (rows × rowBytes(type, cols), rows back to back, as `quantize` writes them) as a WeightMatrix of
 * ggml blocks, split by rows into parts of the given row counts. Each part's buffer is padded with zeros to
 * a whole number of 4-byte words, as every uploader of block-quantized weights must do.
 */
export function uploadQuantWeight(
  h: KernelHarness,
  name: string,
  bytes: Uint8Array,
  rows: number,
  cols: number,
  type: QuantType,
  partRows: number[] = [rows],
): WeightMatrix {
  const rb = rowBytes(type, cols);
  if (bytes.length < rows * rb) throw new Error(`${name}: ${bytes.length} bytes, but [${rows}, ${cols}] of ${type} needs ${rows * rb}`);
  if (partRows.reduce((a, b) => a + b, 0) !== rows) throw new Error(`parts ${partRows} do not sum to ${rows}`);
  let rowStart = 0;
  const parts = partRows.map((n) => {
    const words = new Uint32Array(Math.ceil((n * rb) / 4));
    new Uint8Array(words.buffer).set(bytes.subarray(rowStart * rb, (rowStart + n) * rb));
    const part = { buffer: h.upload(words), rowStart, rows: n };
    rowStart += n;
    return part;
  });
  return { name, rows, cols, dtype: type, parts };
}

/** Byte offsets of the f16 scale fields in a block (d; m or dmin where the type has one). */
export const SCALE_FIELDS: Record<QuantType, number[]> = {
  q4_0: [0], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q8_0: [0], q4_k: [0, 2], q5_k: [0, 2], q6_k: [208],
};

/** Deterministic xorshift32 stream in [0, 1). */
export function uniformStream(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/**
 * Random blocks: random bytes, with every f16 scale field replaced by a finite f16 of random sign and
 * mantissa whose biased exponent is in [eMin, eMax] (0 gives subnormals; 30 is the largest finite).
 */
export function randomBlocks(type: QuantType, rows: number, cols: number, seed: number, eMin: number, eMax: number): Uint8Array {
  const rnd = uniformStream(seed);
  const out = new Uint8Array(rows * rowBytes(type, cols));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  const { bytes } = BLOCK[type];
  for (let b = 0; b < out.length; b += bytes) {
    for (const o of SCALE_FIELDS[type]) {
      const e = eMin + Math.floor(rnd() * (eMax - eMin + 1));
      const bits = (rnd() < 0.5 ? 0x8000 : 0) | (e << 10) | Math.floor(rnd() * 1024);
      out[b + o] = bits & 0xff;
      out[b + o + 1] = bits >> 8;
    }
  }
  return out;
}

/**
 * Biased f16 exponent ranges of random scales that keep dequantized weights within about ±2 (so GEMV
 * outputs are O(1)): d·|q| ≤ 16·2^-3 for 32-element blocks, d·sc·q ≤ 2^-10·63·31 for q4_k/q5_k,
 * d·sc·q ≤ 2^-12·128·32 for q6_k.
 */
export const MODERATE_EXPONENTS: Record<QuantType, [number, number]> = {
  q4_0: [9, 12], q4_1: [9, 12], q5_0: [9, 11], q5_1: [9, 11], q8_0: [6, 8], q4_k: [3, 5], q5_k: [3, 4], q6_k: [1, 3],
};

/** n gaussian values (Box–Muller over uniformStream) of standard deviation `scale`, as f32. */
export function gaussianArray(n: number, seed: number, scale = 1): Float32Array {
  const rnd = uniformStream(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd()) * scale;
  return out;
}

/** 32-bit FNV-1a of bytes (compact golden values for quantizer output). */
export function fnv1a(bytes: Uint8Array): number {
  let hsh = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hsh = Math.imul(hsh ^ bytes[i], 0x01000193) >>> 0;
  return hsh;
}

/** A quantized test weight: its blocks and their CPU dequantization (f32 [rows, cols]). */
export interface QuantizedWeight {
  bytes: Uint8Array;
  values: Float32Array;
}

/** Weights of `type`: ggml's quantization of N(0, 0.5²) data, or random blocks with moderate f16 scales. */
export function quantWeights(type: QuantType, rows: number, cols: number, seed: number, fromData: boolean): QuantizedWeight {
  const bytes = fromData
    ? quantize(type, gaussianArray(rows * cols, seed, 0.5), rows, cols)
    : randomBlocks(type, rows, cols, seed, ...MODERATE_EXPONENTS[type]);
  return { bytes, values: dequantize(type, bytes, rows, cols) };
}

/** Test row lengths: 32·3 and 32·5 for 32-element blocks; 256 and 768 (odd row bytes for q6_k) for K-quants. */
export function testCols(type: QuantType, i: 0 | 1): number {
  return BLOCK[type].elems === 256 ? [256, 768][i] : [96, 160][i];
}
