/**
 * CPU reference of ggml's block-quantized formats (ggml-common.h block_*, ggml-quants.c dequantize_row_*),
 * and the f16/bf16 element conversions they rest on. Arithmetic is f32 in ggml's order, rounded with
 * Math.fround at every step, so shaders/lib/ggml_blocks.wgsl can match it bit for bit. (Every product ggml
 * forms while dequantizing — f16 scale × small integer, twice at most — is exact in f32, so only the final
 * add of q4_1/q5_1 and the subtract of q4_k/q5_k round, and FMA contraction cannot change a result.)
 * Quantizers are in ggml-quantize.ts.
 */
import { BLOCK, rowBytes, type QuantType } from '../gpu/block-types';
import { bf16BitsToF32, f16DecodeTable } from '../model/safetensors';

const f = Math.fround;
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The f32 value of IEEE binary16 bits (exact: subnormals, ±inf, NaN); the safetensors decoder's table. */
export function f16ToF32(bits: number): number {
  return f16DecodeTable()[bits & 0xffff];
}

/** The f32 value of bfloat16 bits (the top half of an f32). */
export const bf16ToF32 = bf16BitsToF32;

function bitsOf(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

function fromBits(b: number): number {
  scratchU32[0] = b >>> 0;
  return scratchF32[0];
}

/**
 * f32 → f16 bits exactly as ggml's GGML_FP32_TO_FP16 (ggml_compute_fp32_to_fp16): round to nearest even,
 * subnormals kept, overflow to ±inf, NaN to 0x7e00 with its sign.
 */
export function f32ToF16(x: number): number {
  const v = f(x);
  let base = f(f(Math.abs(v) * 2 ** 112) * 2 ** -110);
  const w = bitsOf(v);
  const shl1 = (w << 1) >>> 0;
  const sign = (w & 0x80000000) >>> 0;
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = f(fromBits((bias >>> 1) + 0x07800000) + base);
  const bits = bitsOf(base);
  const nonsign = ((bits >>> 13) & 0x7c00) + (bits & 0x0fff);
  return (sign >>> 16) | (shl1 > 0xff000000 ? 0x7e00 : nonsign);
}

/** The f16 at byte offset `o` (little-endian). */
export function readF16(bytes: Uint8Array, o: number): number {
  return f16ToF32(bytes[o] | (bytes[o + 1] << 8));
}

/** Store f16 bits at byte offset `o` (little-endian). */
export function writeF16Bits(bytes: Uint8Array, o: number, bits: number): void {
  bytes[o] = bits & 0xff;
  bytes[o + 1] = (bits >> 8) & 0xff;
}

function u32At(bytes: Uint8Array, o: number): number {
  return (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)) >>> 0;
}

function i8(b: number): number {
  return (b << 24) >> 24;
}

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) from the 12 scale bytes at `o`. */
export function scaleMinK4(bytes: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [bytes[o + j] & 63, bytes[o + j + 4] & 63];
  return [(bytes[o + j + 4] & 0xf) | ((bytes[o + j - 4] >> 6) << 4), (bytes[o + j + 4] >> 4) | ((bytes[o + j] >> 6) << 4)];
}

type BlockDecoder = (b: Uint8Array, o: number, y: Float32Array, yo: number) => void;

// One block at byte offset o into y[yo .. yo + elems), as ggml's dequantize_row_* loop body.
const DECODERS: Record<QuantType, BlockDecoder> = {
  q4_0(b, o, y, yo) {
    const d = readF16(b, o);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 2 + j];
      y[yo + j] = f(((q & 0xf) - 8) * d);
      y[yo + j + 16] = f(((q >> 4) - 8) * d);
    }
  },
  q4_1(b, o, y, yo) {
    const d = readF16(b, o);
    const m = readF16(b, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 4 + j];
      y[yo + j] = f(f((q & 0xf) * d) + m);
      y[yo + j + 16] = f(f((q >> 4) * d) + m);
    }
  },
  q5_0(b, o, y, yo) {
    const d = readF16(b, o);
    const qh = u32At(b, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 6 + j];
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      y[yo + j] = f((((q & 0xf) | h0) - 16) * d);
      y[yo + j + 16] = f((((q >> 4) | h1) - 16) * d);
    }
  },
  q5_1(b, o, y, yo) {
    const d = readF16(b, o);
    const m = readF16(b, o + 2);
    const qh = u32At(b, o + 4);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 8 + j];
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      y[yo + j] = f(f(((q & 0xf) | h0) * d) + m);
      y[yo + j + 16] = f(f(((q >> 4) | h1) * d) + m);
    }
  },
  q8_0(b, o, y, yo) {
    const d = readF16(b, o);
    for (let j = 0; j < 32; j++) y[yo + j] = f(i8(b[o + 2 + j]) * d);
  },
  q4_k(b, o, y, yo) {
    const d = readF16(b, o);
    const min = readF16(b, o + 2);
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = scaleMinK4(b, o + 4, 2 * c);
      const [sc2, m2] = scaleMinK4(b, o + 4, 2 * c + 1);
      const d1 = f(d * sc1), n1 = f(min * m1);
      const d2 = f(d * sc2), n2 = f(min * m2);
      const q = o + 16 + 32 * c;
      for (let l = 0; l < 32; l++) y[yo + 64 * c + l] = f(f(d1 * (b[q + l] & 0xf)) - n1);
      for (let l = 0; l < 32; l++) y[yo + 64 * c + 32 + l] = f(f(d2 * (b[q + l] >> 4)) - n2);
    }
  },
  q5_k(b, o, y, yo) {
    const d = readF16(b, o);
    const min = readF16(b, o + 2);
    const qh = o + 16;
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = scaleMinK4(b, o + 4, 2 * c);
      const [sc2, m2] = scaleMinK4(b, o + 4, 2 * c + 1);
      const d1 = f(d * sc1), n1 = f(min * m1);
      const d2 = f(d * sc2), n2 = f(min * m2);
      const u1 = 1 << (2 * c), u2 = 2 << (2 * c);
      const ql = o + 48 + 32 * c;
      for (let l = 0; l < 32; l++) y[yo + 64 * c + l] = f(f(d1 * ((b[ql + l] & 0xf) + (b[qh + l] & u1 ? 16 : 0))) - n1);
      for (let l = 0; l < 32; l++) y[yo + 64 * c + 32 + l] = f(f(d2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0))) - n2);
    }
  },
  q6_k(b, o, y, yo) {
    const d = readF16(b, o + 208);
    for (let n = 0; n < 2; n++) {
      const ql = o + 64 * n, qh = o + 128 + 32 * n, sc = o + 192 + 8 * n, out = yo + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l];
        const q1 = ((b[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        y[out + l] = f(f(d * i8(b[sc + is])) * q1);
        y[out + l + 32] = f(f(d * i8(b[sc + is + 2])) * q2);
        y[out + l + 64] = f(f(d * i8(b[sc + is + 4])) * q3);
        y[out + l + 96] = f(f(d * i8(b[sc + is + 6])) * q4);
      }
    }
  },
};

/** One row of `cols` elements of `type` (rowBytes(type, cols) bytes from the start of `bytes`), dequantized. */
export function dequantizeRow(type: QuantType, bytes: Uint8Array, cols: number): Float32Array {
  const out = new Float32Array(cols);
  decodeInto(type, bytes, 0, cols, out, 0);
  return out;
}

/** A [rows, cols] matrix of `type`, rows back to back (no padding between rows), dequantized row-major. */
export function dequantize(type: QuantType, bytes: Uint8Array, rows: number, cols: number): Float32Array {
  const rb = rowBytes(type, cols);
  if (bytes.length < rows * rb) throw new RangeError(`${type} [${rows}, ${cols}] needs ${rows * rb} bytes, got ${bytes.length}`);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) decodeInto(type, bytes, r * rb, cols, out, r * cols);
  return out;
}

function decodeInto(type: QuantType, bytes: Uint8Array, offset: number, cols: number, out: Float32Array, outOffset: number): void {
  const { elems, bytes: bb } = BLOCK[type];
  const n = rowBytes(type, cols) / bb;
  if (bytes.length < offset + n * bb) throw new RangeError(`${type} row of ${cols} needs ${n * bb} bytes at ${offset}, got ${bytes.length}`);
  const decode = DECODERS[type];
  for (let i = 0; i < n; i++) decode(bytes, offset + i * bb, out, outOffset + i * elems);
}
