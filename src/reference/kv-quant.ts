/**
 * CPU reference of the quantized KV layouts (docs/kv-compression.md §1, layout in shaders/lib/kv_quant.wgsl):
 * the same quantizer, f16 rounding of (s, min), code packing and flush schedule as the GPU kernels,
 * in plain f32 math. Tests compare the GPU's packed bytes and attention outputs against it.
 */
import { keyScaleCount, quantizedCount, wordsPerRow, type QuantFormat } from '../kv/quant-format';
import { encodeF16Bits, f16BitsToF32 } from '../model/safetensors';
import type { ReferenceKv } from './kv-reference';

const one = new Float32Array(1);
/** Round to the nearest f16 value (ties to even), as the GPU stores (s, min). */
export function f16Round(x: number): number {
  one[0] = x;
  return f16BitsToF32(encodeF16Bits(one)[0]);
}

/** (s, min) for a group with extremes lo, hi: min rounded to f16, s = (hi − min)/(2^b − 1) ≥ 1e-6, rounded to f16. */
export function groupScale(lo: number, hi: number, bits: number): [number, number] {
  const m = f16Round(lo);
  const s = f16Round(Math.max(Math.fround(Math.fround(hi - m) * Math.fround(1 / ((1 << bits) - 1))), 1e-6));
  return [s, m];
}

/** The code of x under (s, min): floor((x − min)/s + 0.5) clamped to [0, 2^b − 1], decided exactly as the GPU does. */
export function quantizeValue(x: number, s: number, m: number, bits: number): number {
  const levels = (1 << bits) - 1;
  const d = Math.fround(x - m);
  let q = Math.min(Math.max(Math.floor(d / s + 0.5), 0), levels);
  if (q < levels && d >= (q + 0.5) * s) q += 1;
  if (q > 0 && d < (q - 0.5) * s) q -= 1;
  return q;
}

/** Pack codes of one row: 32/b codes per u32 word, code i at bit b·i. */
export function packRow(codes: ArrayLike<number>, bits: number): Uint32Array {
  const words = new Uint32Array(wordsPerRow(codes.length, bits));
  for (let e = 0; e < codes.length; e++) words[(e * bits) >> 5] |= codes[e] << ((e * bits) & 31);
  return words;
}

/** The u32 a (s, min) pair is stored as: f16 s in the low half, f16 min in the high half. */
export function packScale(s: number, m: number): number {
  const bits = encodeF16Bits(new Float32Array([s, m]));
  return (bits[0] | (bits[1] << 16)) >>> 0;
}

/** Decode token p's K (isKey) or V row from packed buffers in the GPU layout (for checking GPU state). */
export function decodeRow(f: QuantFormat, codes: Uint32Array, scales: Uint32Array, capacity: number, p: number, isKey: boolean): Float32Array {
  const E = f.rowElems;
  const kw = wordsPerRow(E, f.keyBits);
  const bits = isKey ? f.keyBits : f.valueBits;
  const base = p * (kw + wordsPerRow(E, f.valueBits)) + (isKey ? 0 : kw);
  const row = new Float32Array(E);
  const half = (x: number) => f16BitsToF32(x & 0xffff);
  for (let e = 0; e < E; e++) {
    const code = (codes[base + ((e * bits) >> 5)] >>> ((e * bits) & 31)) & ((1 << bits) - 1);
    const packed =
      isKey && f.keyGrouping === 'channel'
        ? scales[Math.floor(p / f.keyBlockTokens) * E + e]
        : scales[(isKey ? 0 : keyScaleCount(f, capacity)) + p * (E / f.channelGroup) + Math.floor(e / f.channelGroup)];
    row[e] = Math.fround(code * half(packed) + half(packed >>> 16));
  }
  return row;
}

/** One layer of a quantized cache on the CPU, mirroring the GPU buffers. */
export class QuantLayerReference {
  /** Full-precision rows as received; only [quantizedCount, n) are ever read back from here (the ring). */
  private fpK: number[][] = [];
  private fpV: number[][] = [];
  /** Dequantized rows of quantized positions, as attention sees them. */
  private deqK: Float32Array[] = [];
  private deqV: Float32Array[] = [];
  /** Packed codes and scales in the GPU layout, grown as positions are quantized. */
  readonly codes: number[] = [];
  readonly keyScales: number[] = [];
  readonly valueScales: number[] = [];

  constructor(readonly format: QuantFormat) {}

  get length(): number {
    return this.fpK.length;
  }

  /** Rows attention reads for positions [0, n): dequantized below the flush boundary, full precision above. */
  view(n: number): { k: Float32Array; v: Float32Array } {
    const E = this.format.rowElems;
    const k = new Float32Array(n * E);
    const v = new Float32Array(n * E);
    const qk = quantizedCount(this.format, n, true);
    const qv = quantizedCount(this.format, n, false);
    for (let p = 0; p < n; p++) {
      k.set(p < qk ? this.deqK[p] : this.fpK[p], p * E);
      v.set(p < qv ? this.deqV[p] : this.fpV[p], p * E);
    }
    return { k, v };
  }

  /** The rows as received, before any quantization: [n, E] for K and V. */
  inputs(n: number): { k: Float32Array; v: Float32Array } {
    return { k: Float32Array.from(this.fpK.slice(0, n).flat()), v: Float32Array.from(this.fpV.slice(0, n).flat()) };
  }

  /** Append rows [T, E] after attention, then quantize what leaves the residual window. */
  append(k: Float32Array, v: Float32Array): void {
    const E = this.format.rowElems;
    const n0 = this.length;
    for (let t = 0; t < k.length / E; t++) {
      this.fpK.push(Array.from(k.subarray(t * E, (t + 1) * E)));
      this.fpV.push(Array.from(v.subarray(t * E, (t + 1) * E)));
    }
    const n1 = this.length;
    const f = this.format;
    if (f.keyGrouping === 'channel') {
      for (let b = quantizedCount(f, n0, true); b < quantizedCount(f, n1, true); b += f.keyBlockTokens) this.quantizeKeyBlock(b);
    } else {
      for (let p = quantizedCount(f, n0, true); p < quantizedCount(f, n1, true); p++) this.deqK[p] = this.quantizeTokenRow(p, this.fpK[p], f.keyBits, this.keyScales);
    }
    for (let p = quantizedCount(f, n0, false); p < quantizedCount(f, n1, false); p++) this.deqV[p] = this.quantizeTokenRow(p, this.fpV[p], f.valueBits, this.valueScales);
  }

  private rowCodes(p: number): { kw: number; vw: number; base: number } {
    const kw = wordsPerRow(this.format.rowElems, this.format.keyBits);
    const vw = wordsPerRow(this.format.rowElems, this.format.valueBits);
    const base = p * (kw + vw);
    while (this.codes.length < base + kw + vw) this.codes.push(0);
    return { kw, vw, base };
  }

  /** Per-token groups of `channelGroup` channels; returns the dequantized row. */
  private quantizeTokenRow(p: number, row: number[], bits: number, scales: number[]): Float32Array {
    const f = this.format;
    const g = f.channelGroup;
    const isKey = scales === this.keyScales;
    const codes = new Array<number>(row.length);
    const deq = new Float32Array(row.length);
    for (let g0 = 0; g0 < row.length; g0 += g) {
      const part = row.slice(g0, g0 + g);
      const [s, m] = groupScale(Math.min(...part), Math.max(...part), bits);
      scales[p * (row.length / g) + g0 / g] = packScale(s, m);
      for (let c = g0; c < g0 + g; c++) {
        codes[c] = quantizeValue(row[c], s, m, bits);
        deq[c] = Math.fround(codes[c] * s + m);
      }
    }
    const { kw, base } = this.rowCodes(p);
    packRow(codes, bits).forEach((w, i) => (this.codes[base + (isKey ? 0 : kw) + i] = w));
    return deq;
  }

  /** Keys per channel over the G-token block starting at b. */
  private quantizeKeyBlock(b: number): void {
    const f = this.format;
    const E = f.rowElems;
    const G = f.keyBlockTokens;
    const codes = Array.from({ length: G }, () => new Array<number>(E));
    for (let t = 0; t < G; t++) this.deqK[b + t] = new Float32Array(E);
    for (let e = 0; e < E; e++) {
      const col = Array.from({ length: G }, (_, t) => this.fpK[b + t][e]);
      const [s, m] = groupScale(Math.min(...col), Math.max(...col), f.keyBits);
      this.keyScales[(b / G) * E + e] = packScale(s, m);
      for (let t = 0; t < G; t++) {
        codes[t][e] = quantizeValue(col[t], s, m, f.keyBits);
        this.deqK[b + t][e] = Math.fround(codes[t][e] * s + m);
      }
    }
    for (let t = 0; t < G; t++) {
      const { base } = this.rowCodes(b + t);
      packRow(codes[t], f.keyBits).forEach((w, i) => (this.codes[base + i] = w));
    }
  }

  /** Scales in the GPU's combined buffer layout for a given capacity: K region, then V region. */
  scalesFor(capacity: number): Uint32Array {
    const out = new Uint32Array(keyScaleCount(this.format, capacity) + this.valueScales.length);
    out.set(this.keyScales.map((x) => x ?? 0));
    out.set(this.valueScales.map((x) => x ?? 0), keyScaleCount(this.format, capacity));
    return out;
  }
}

/** Every layer quantized in the same format. */
export class QuantReferenceKv implements ReferenceKv {
  readonly layers: QuantLayerReference[];

  constructor(numLayers: number, format: QuantFormat) {
    this.layers = Array.from({ length: numLayers }, () => new QuantLayerReference(format));
  }

  attend(layer: number, k: Float32Array, v: Float32Array): { k: Float32Array; v: Float32Array } {
    const L = this.layers[layer];
    const past = L.view(L.length);
    const cat = (a: Float32Array, b: Float32Array) => {
      const out = new Float32Array(a.length + b.length);
      out.set(a);
      out.set(b, a.length);
      return out;
    };
    const rows = { k: cat(past.k, k), v: cat(past.v, v) };
    L.append(k, v);
    return rows;
  }

  reset(): void {
    const f = this.layers[0].format;
    this.layers.splice(0, this.layers.length, ...this.layers.map(() => new QuantLayerReference(f)));
  }
}
