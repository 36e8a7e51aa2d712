// CPU reference of ggml's block formats (src/reference/ggml-blocks.ts, ggml-quantize.ts): blocks built by
// hand from ggml-common.h's layouts and decoded with independent per-element formulas, f16/bf16 rounding
// and ties, quantizer bytes equal to ggml's own (golden hashes), and quantize → dequantize error bounds.
import { describe, expect, it } from 'vitest';
import { BLOCK, QUANT_TYPES, rowBytes, type QuantType } from '../../src/gpu/block-types';
import { encodeF16Bits } from '../../src/model/safetensors';
import { bf16ToF32, dequantize, dequantizeRow, f16ToF32, f32ToF16 } from '../../src/reference/ggml-blocks';
import { quantize } from '../../src/reference/ggml-quantize';
import { fnv1a, gaussianArray, uniformStream } from './quant-fixtures';

const F16 = { half: 0x3800, quarter: 0x3400, one: 0x3c00, two: 0x4000, minusOne: 0xbc00, eighth: 0x3000 };

function block(type: QuantType): Uint8Array {
  return new Uint8Array(BLOCK[type].bytes);
}

function putF16(b: Uint8Array, o: number, bits: number): void {
  b[o] = bits & 0xff;
  b[o + 1] = bits >> 8;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  for (let i = 0; i < 4; i++) b[o + i] = (v >>> (8 * i)) & 0xff;
}

/** The 12 scale bytes of q4_k/q5_k for 6-bit scales sc[0..7] and mins m[0..7] (ggml-common.h's packing). */
function packScalesK4(sc: number[], m: number[]): number[] {
  const out = new Array<number>(12).fill(0);
  for (let j = 0; j < 4; j++) {
    out[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
    out[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
    out[j + 8] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4);
  }
  return out;
}

function expectExact(got: Float32Array, want: number[]): void {
  expect(Array.from(got)).toEqual(want.map(Math.fround));
}

describe('f16 and bf16 conversions', () => {
  it('rounds f32 to f16 to nearest even, with subnormals, overflow to inf and NaN', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00], [-2, 0xc000], [0, 0], [-0, 0x8000], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00],
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2^-10: to even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 1 + 2^-10 and 1 + 2^-9: to even (up)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie: up
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [NaN, 0x7e00],
    ];
    for (const [x, bits] of cases) expect(f32ToF16(x), `f32ToF16(${x})`).toBe(bits);
  });

  it('round-trips every finite f16 and agrees with the safetensors encoder on random f32 bit patterns', () => {
    for (let hb = 0; hb < 0x10000; hb++) {
      if ((hb & 0x7c00) === 0x7c00 && hb & 0x3ff) continue; // NaN payloads are not preserved
      expect(f32ToF16(f16ToF32(hb))).toBe(hb);
    }
    const rnd = uniformStream(5);
    const bits = Uint32Array.from({ length: 20000 }, () => Math.floor(rnd() * 2 ** 32));
    const values = new Float32Array(bits.buffer).filter((v) => !Number.isNaN(v));
    const theirs = encodeF16Bits(values, { clampToF16Range: false });
    values.forEach((v, i) => expect(f32ToF16(v)).toBe(theirs[i]));
  });

  it('decodes f16 and bf16 bits', () => {
    expect(f16ToF32(0x3555)).toBe(Math.fround(0.333251953125));
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0xfbff)).toBe(-65504);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc0a0)).toBe(-5);
    expect(bf16ToF32(0x0001)).toBe(2 ** -133);
  });
});

describe('hand-built blocks decode as ggml-common.h defines them', () => {
  it('q4_0: y = (nibble − 8)·d, low nibbles first', () => {
    const b = block('q4_0');
    putF16(b, 0, F16.half);
    for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
    expectExact(dequantizeRow('q4_0', b, 32), Array.from({ length: 32 }, (_, e) => (e < 16 ? e - 8 : 15 - (e - 16) - 8) * 0.5));
  });

  it('q4_1: y = nibble·d + m', () => {
    const b = block('q4_1');
    putF16(b, 0, F16.quarter);
    putF16(b, 2, F16.minusOne);
    for (let j = 0; j < 16; j++) b[4 + j] = ((j * 3) & 15) | (j << 4);
    expectExact(dequantizeRow('q4_1', b, 32), Array.from({ length: 32 }, (_, e) => (e < 16 ? (e * 3) & 15 : e - 16) * 0.25 - 1));
  });

  it('q5_0: bit e of qh is bit 4 of element e; y = (q − 16)·d', () => {
    const b = block('q5_0');
    putF16(b, 0, F16.one);
    const qh = 0xa5c3_0ff1;
    putU32(b, 2, qh);
    for (let j = 0; j < 16; j++) b[6 + j] = j | ((j ^ 9) << 4);
    const want = Array.from({ length: 32 }, (_, e) => ((e < 16 ? e : (e - 16) ^ 9) | (((qh >>> e) & 1) << 4)) - 16);
    expectExact(dequantizeRow('q5_0', b, 32), want);
  });

  it('q5_1: y = q·d + m', () => {
    const b = block('q5_1');
    putF16(b, 0, F16.two);
    putF16(b, 2, F16.half);
    const qh = 0x0000_ffff;
    putU32(b, 4, qh);
    for (let j = 0; j < 16; j++) b[8 + j] = (15 - j) | (j << 4);
    const want = Array.from({ length: 32 }, (_, e) => (((e < 16 ? 15 - e : e - 16) | (((qh >>> e) & 1) << 4)) * 2) + 0.5);
    expectExact(dequantizeRow('q5_1', b, 32), want);
  });

  it('q8_0: y = i8·d', () => {
    const b = block('q8_0');
    putF16(b, 0, F16.half);
    for (let j = 0; j < 32; j++) b[2 + j] = (j * 8 - 128) & 0xff;
    expectExact(dequantizeRow('q8_0', b, 32), Array.from({ length: 32 }, (_, j) => (j * 8 - 128) * 0.5));
  });

  // Scales ≥ 16 in sub-blocks 4..7 exercise the high bits packed into bytes 0..7.
  const sc = [1, 5, 9, 13, 40, 51, 62, 33];
  const mins = [0, 7, 21, 63, 17, 48, 2, 30];

  it('q4_k: sub-block s is nibble s % 2 of qs[32·(s/2) ..]; y = d·sc·q − dmin·m', () => {
    const b = block('q4_k');
    putF16(b, 0, F16.half);
    putF16(b, 2, F16.quarter);
    b.set(packScalesK4(sc, mins), 4);
    for (let i = 0; i < 128; i++) b[16 + i] = (i % 16) | ((15 - ((i * 7) % 16)) << 4);
    const want = Array.from({ length: 256 }, (_, e) => {
      const s = Math.floor(e / 32), l = e % 32, byte = 32 * Math.floor(s / 2) + l;
      const q = s % 2 ? 15 - ((byte * 7) % 16) : byte % 16;
      return 0.5 * sc[s] * q - 0.25 * mins[s];
    });
    expectExact(dequantizeRow('q4_k', b, 256), want);
  });

  it('q5_k: bit s of qh[l] is bit 4 of element l of sub-block s', () => {
    const b = block('q5_k');
    putF16(b, 0, F16.eighth);
    putF16(b, 2, F16.one);
    b.set(packScalesK4(sc, mins), 4);
    for (let l = 0; l < 32; l++) b[16 + l] = (l * 37 + 11) & 0xff;
    for (let i = 0; i < 128; i++) b[48 + i] = ((i * 5) % 16) | ((i % 16) << 4);
    const want = Array.from({ length: 256 }, (_, e) => {
      const s = Math.floor(e / 32), l = e % 32, byte = 32 * Math.floor(s / 2) + l;
      const lo = s % 2 ? byte % 16 : (byte * 5) % 16;
      const q = lo + 16 * ((((l * 37 + 11) & 0xff) >> s) & 1);
      return 0.125 * sc[s] * q - 1 * mins[s];
    });
    expectExact(dequantizeRow('q5_k', b, 256), want);
  });

  it('q6_k: 4 low bits from ql, 2 high bits from qh, i8 scale per 16; y = d·sc·(q − 32)', () => {
    const b = block('q6_k');
    for (let i = 0; i < 128; i++) b[i] = (i * 13 + 7) & 0xff;
    for (let i = 0; i < 64; i++) b[128 + i] = (i * 29 + 3) & 0xff;
    const scales = Array.from({ length: 16 }, (_, i) => i * 17 - 128);
    scales.forEach((s, i) => (b[192 + i] = s & 0xff));
    putF16(b, 208, F16.quarter);
    const want = Array.from({ length: 256 }, (_, e) => {
      const n = Math.floor(e / 128), g = Math.floor((e % 128) / 32), l = e % 32;
      const qlByte = b[64 * n + 32 * (g % 2) + l];
      const lo = g < 2 ? qlByte & 15 : qlByte >> 4;
      const hi = (b[128 + 32 * n + l] >> (2 * g)) & 3;
      return 0.25 * scales[8 * n + 2 * g + Math.floor(l / 16)] * ((lo | (hi << 4)) - 32);
    });
    expectExact(dequantizeRow('q6_k', b, 256), want);
  });

  it('dequantize reads rows back to back and checks sizes', () => {
    const b = new Uint8Array(2 * rowBytes('q8_0', 64));
    for (let i = 0; i < 4; i++) {
      putF16(b, 34 * i, F16.one);
      b[34 * i + 2] = i + 1;
    }
    const y = dequantize('q8_0', b, 2, 64);
    expect([y[0], y[32], y[64], y[96]]).toEqual([1, 2, 3, 4]);
    expect(() => dequantize('q8_0', b.subarray(1), 2, 64)).toThrow(RangeError);
    expect(() => dequantizeRow('q4_k', new Uint8Array(144), 128)).toThrow(RangeError);
  });
});

describe('quantizers match ggml quantize_row_*_ref', () => {
  // FNV-1a of the bytes ggml-quants.c (ggml-org/ggml d99724f, built with -ffp-contract=off) writes for this
  // input: outliers, an all-zero super-block and a constant run.
  const golden: Record<QuantType, number> = {
    q4_0: 0x0e308df7, q4_1: 0xc9dd2210, q5_0: 0x1d945bb0, q5_1: 0x1ec7df27,
    q8_0: 0xf8c73a54, q4_k: 0xe90f350e, q5_k: 0xd956e978, q6_k: 0x20aae6c4,
  };

  it('writes the same bytes as ggml for every type', () => {
    const x = gaussianArray(8 * 256, 2024, 0.05);
    for (let i = 0; i < x.length; i += 61) x[i] *= 20;
    x.fill(0, 256, 512);
    x.fill(0.3, 512, 544);
    for (const t of QUANT_TYPES) expect(fnv1a(quantize(t, x, 8, 256)), t).toBe(golden[t]);
  });

  it('q4_0 and q8_0 blocks worked by hand', () => {
    // q4_0: max |x| is x[0] = −16, so d = −16 / −8 = 2 and q = min(15, trunc(x / 2 + 8.5)).
    const x = Float32Array.from({ length: 32 }, (_, j) => j - 16);
    const q4 = quantize('q4_0', x, 1, 32);
    expect(f16ToF32(q4[0] | (q4[1] << 8))).toBe(2);
    for (let j = 0; j < 16; j++) expect(q4[2 + j]).toBe(Math.trunc((j - 16) / 2 + 8.5) | (Math.min(15, Math.trunc(j / 2 + 8.5)) << 4));
    // q8_0 of k·d (|k| ≤ 127, amax = 127·d with d exact in f16) is exact.
    const d = 2 ** -7;
    const v = Float32Array.from({ length: 32 }, (_, j) => (j === 5 ? -127 : ((j * 37) % 255) - 127) * d);
    expect(Array.from(dequantize('q8_0', quantize('q8_0', v, 1, 32), 1, 32))).toEqual(Array.from(v));
  });

  it('all-zero input gives zero blocks and zeros back', () => {
    for (const t of QUANT_TYPES) {
      const q = quantize(t, new Float32Array(512), 2, 256);
      expect(Array.from(dequantize(t, q, 2, 256)).every((v) => v === 0), t).toBe(true);
    }
  });

  it('rejects data that is not [rows, cols] and rows that are not whole blocks', () => {
    expect(() => quantize('q4_0', new Float32Array(64), 3, 32)).toThrow(RangeError);
    expect(() => quantize('q6_k', new Float32Array(128), 1, 128)).toThrow(RangeError);
  });
});

describe('quantize → dequantize error', () => {
  // Relative RMS error on N(0, 0.02²) data, 16 rows of 512; measured about 0.085, 0.077, 0.042, 0.037,
  // 0.0053, 0.070, 0.036, 0.0177 (llama.cpp's ordering: q8_0 < q6_k < q5_1 ≈ q5_k < q5_0 < q4_k < q4_1 < q4_0).
  const bounds: Record<QuantType, number> = {
    q4_0: 0.095, q4_1: 0.085, q5_0: 0.047, q5_1: 0.042, q8_0: 0.006, q4_k: 0.078, q5_k: 0.04, q6_k: 0.02,
  };

  it('stays within the bound of each type, K-quants beating the 32-element types of equal bits', () => {
    const x = gaussianArray(16 * 512, 9, 0.02);
    const err: Partial<Record<QuantType, number>> = {};
    for (const t of QUANT_TYPES) {
      const y = dequantize(t, quantize(t, x, 16, 512), 16, 512);
      let se = 0, sx = 0;
      for (let i = 0; i < x.length; i++) {
        se += (x[i] - y[i]) ** 2;
        sx += x[i] ** 2;
      }
      err[t] = Math.sqrt(se / sx);
      console.log(`[quant-error] ${t} relative RMS ${err[t]!.toFixed(4)} (bound ${bounds[t]})`);
      expect(err[t], t).toBeLessThan(bounds[t]);
    }
    expect(err.q4_k!).toBeLessThan(err.q4_0!);
    expect(err.q5_k!).toBeLessThan(err.q5_0!);
    expect(err.q6_k!).toBeLessThan(err.q5_k!);
    expect(err.q8_0!).toBeLessThan(err.q6_k!);
  });
});
