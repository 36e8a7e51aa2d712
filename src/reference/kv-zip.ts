/**
 * CPU reference of the `zip` KV layout (ZipCache-style mixed precision; design and layout in
 * src/kv/zip-format.ts and shaders/lib/zip_layout.wgsl): the same probes, normalized saliency, per-block
 * selection, key and channel-separable value quantizers, f16 roundings and packing as the GPU kernels.
 * Probabilities are computed in f64 (the GPU uses f32), so saliency scores agree to about 1e-6 relative;
 * every other stored bit is decided exactly the same way.
 */
import { isProbeRow, zipQuantizedCount, type ZipFormat } from '../kv/zip-format';
import { encodeF16Bits, f16BitsToF32 } from '../model/safetensors';
import { groupScale, packScale, quantizeValue } from './kv-quant';
import type { ReferenceKv } from './kv-reference';

const fround = Math.fround;
/** 1 / (2^bits − 1) as the nearest f32, as WGSL `inverse_levels`. */
const INVERSE_LEVELS: Record<number, number> = { 2: fround(1 / 3), 4: fround(1 / 15), 8: fround(1 / 255) };
const SCALE_FLOOR = fround(1e-6);

/** f16 bits of an f32 value (nearest, ties to even, clamped to ±65504), as WGSL `f16_bits`. */
export function f16Bits(x: number): number {
  return encodeF16Bits(Float32Array.of(x))[0];
}

/** The neighbouring f16 bit pattern above (up) or below a finite one. */
function f16Step(b: number, up: boolean): number {
  if (b === 0 || b === 0x8000) return up ? 0x0001 : 0x8001;
  return ((b & 0x8000) !== 0) === up ? b - 1 : b + 1;
}

/** Bits of the smallest f16 ≥ x. */
export function f16BitsUp(x: number): number {
  const b = f16Bits(x);
  return f16BitsToF32(b) < x ? f16Step(b, true) : b;
}

/** Bits of the largest f16 ≤ x. */
export function f16BitsDown(x: number): number {
  const b = f16Bits(x);
  return f16BitsToF32(b) > x ? f16Step(b, false) : b;
}

/** Bits of the f16 nearest sqrt(m), ties up (m in [2^-24, 2^24]); as WGSL `f16_nearest_sqrt`. */
export function f16NearestSqrt(m: number): number {
  let b = f16Bits(fround(Math.sqrt(m)));
  for (let i = 0; i < 2; i++) {
    const mid = (f16BitsToF32(b) + f16BitsToF32(b + 1)) * 0.5;
    if (m >= mid * mid) b += 1;
  }
  for (let i = 0; i < 2; i++) {
    const mid = (f16BitsToF32(b) + f16BitsToF32(b - 1)) * 0.5;
    if (m < mid * mid) b -= 1;
  }
  return b;
}

/** Bits of the f16 nearest 1/c, ties up (c an f16 in [2^-12, 2^12]); as WGSL `f16_nearest_reciprocal`. */
export function f16NearestReciprocal(c: number): number {
  let b = f16Bits(fround(1 / c));
  for (let i = 0; i < 2; i++) if (c * ((f16BitsToF32(b) + f16BitsToF32(b + 1)) * 0.5) <= 1) b += 1;
  for (let i = 0; i < 2; i++) if (c * ((f16BitsToF32(b) + f16BitsToF32(b - 1)) * 0.5) > 1) b -= 1;
  return b;
}

/** Where token i of a block sits for KV head g: salient or not, and its slot in its subset. */
export function zipLocate(f: ZipFormat, meta: ArrayLike<number>, block: number, g: number, i: number): { salient: boolean; slot: number } {
  const base = block * f.metaWords + f.maskOffset + g * f.maskWords;
  let below = 0;
  for (let r = 0; r < i; r++) below += (meta[base + (r >> 5)] >>> (r & 31)) & 1;
  const salient = ((meta[base + (i >> 5)] >>> (i & 31)) & 1) === 1;
  return { salient, slot: salient ? below : i - below };
}

/** (s, lo) of token i of a block at `bits` bits, as WGSL `value_scale`. */
export function zipValueScale(f: ZipFormat, meta: ArrayLike<number>, block: number, i: number, bits: number): [number, number] {
  const w = meta[block * f.metaWords + f.valueScaleOffset + i];
  const lo = f16BitsToF32(w & 0xffff);
  const hi = f16BitsToF32(w >>> 16);
  const s = Math.max(fround(fround(hi - lo) * INVERSE_LEVELS[bits]), SCALE_FLOOR);
  return [f16BitsToF32(f16BitsUp(s)), lo];
}

/** Index of the first word of a (block, tensor, head, subset) code stream. */
function codeBase(f: ZipFormat, block: number, tensor: number, g: number, salient: boolean): number {
  return block * f.codeWords + (tensor * f.kvHeads + g) * f.headWords + (salient ? 0 : f.salientWords);
}

/** Decode quantized position p's K (tensor 0) or V (tensor 1) row [E] from buffers in the GPU layout. */
export function decodeZipRow(f: ZipFormat, codes: ArrayLike<number>, meta: ArrayLike<number>, p: number, tensor: 0 | 1): Float32Array {
  const block = Math.floor(p / f.residual);
  const i = p % f.residual;
  const d = f.headDim;
  const row = new Float32Array(f.rowElems);
  for (let g = 0; g < f.kvHeads; g++) {
    const { salient, slot } = zipLocate(f, meta, block, g, i);
    const bits = salient ? f.highBits : f.lowBits;
    const base = codeBase(f, block, tensor, g, salient);
    const [vs, vlo] = tensor === 1 ? zipValueScale(f, meta, block, i, bits) : [0, 0];
    for (let c = 0; c < d; c++) {
      const bit = (slot * d + c) * bits;
      const code = (codes[base + (bit >>> 5)] >>> (bit & 31)) & ((1 << bits) - 1);
      if (tensor === 0) {
        const group = (salient ? 0 : f.keyGroupsSalient) + Math.floor(slot / f.keyGroup);
        const sm = meta[block * f.metaWords + (g * f.keyGroups + group) * d + c];
        row[g * d + c] = fround(code * f16BitsToF32(sm & 0xffff) + f16BitsToF32(sm >>> 16));
      } else {
        const channel = f16BitsToF32(meta[block * f.metaWords + f.channelScaleOffset + g * d + c] & 0xffff);
        row[g * d + c] = fround(fround(code * vs + vlo) * channel);
      }
    }
  }
  return row;
}

/** One zip layer on the CPU, mirroring the GPU buffers. */
export class ZipLayerReference {
  /** Full-precision rows as received; only [Q(n), n) are read back from here (the ring). */
  private fpK: Float32Array[] = [];
  private fpV: Float32Array[] = [];
  private deqK: Float32Array[] = [];
  private deqV: Float32Array[] = [];
  /** Saliency per KV head and position (f32 sums, as the GPU accumulates them), and probe counts. */
  readonly acc: number[][];
  readonly count: number[] = [];
  /** Packed codes and block meta records in the GPU layout, grown block by block. */
  readonly codes: number[] = [];
  readonly meta: number[] = [];

  constructor(
    readonly format: ZipFormat,
    readonly heads: number,
  ) {
    this.acc = Array.from({ length: format.kvHeads }, () => []);
  }

  get length(): number {
    return this.fpK.length;
  }

  /** Rows attention reads for positions [0, n): dequantized below Q(n), full precision above. */
  view(n: number): { k: Float32Array; v: Float32Array } {
    const E = this.format.rowElems;
    const q = zipQuantizedCount(this.format, n);
    const k = new Float32Array(n * E);
    const v = new Float32Array(n * E);
    for (let p = 0; p < n; p++) {
      k.set(p < q ? this.deqK[p] : this.fpK[p], p * E);
      v.set(p < q ? this.deqV[p] : this.fpV[p], p * E);
    }
    return { k, v };
  }

  /** The rows as received, before any quantization: [n, E] for K and V. */
  inputs(n: number): { k: Float32Array; v: Float32Array } {
    const E = this.format.rowElems;
    const k = new Float32Array(n * E);
    const v = new Float32Array(n * E);
    for (let p = 0; p < n; p++) {
      k.set(this.fpK[p], p * E);
      v.set(this.fpV[p], p * E);
    }
    return { k, v };
  }

  /**
   * One step: returns the rows attention reads (past + fresh), then scores the unquantized tokens with this
   * step's probe queries q [T, H, d], appends the fresh rows and freezes every block they complete.
   */
  step(k: Float32Array, v: Float32Array, q: Float32Array): { k: Float32Array; v: Float32Array } {
    const f = this.format;
    const E = f.rowElems;
    const T = k.length / E;
    const pos0 = this.length;
    const past = this.view(pos0);
    const rows = { k: concat(past.k, k), v: concat(past.v, v) };
    this.score(rows.k, q, pos0, T);
    for (let t = 0; t < T; t++) {
      this.fpK.push(k.slice(t * E, (t + 1) * E));
      this.fpV.push(v.slice(t * E, (t + 1) * E));
    }
    for (let b = zipQuantizedCount(f, pos0); b < zipQuantizedCount(f, pos0 + T); b += f.residual) this.freeze(b / f.residual);
    return rows;
  }

  /** Add the probes' softmax probabilities of tokens [Q(pos0), pos0 + T) (GQA group summed) and their counts. */
  private score(keys: Float32Array, q: Float32Array, pos0: number, T: number): void {
    const f = this.format;
    const { headDim: d, kvHeads: Hk, rowElems: E } = f;
    const H = this.heads;
    const group = H / Hk;
    const first = zipQuantizedCount(f, pos0);
    const span = pos0 + T - first;
    const sums = Array.from({ length: Hk }, () => new Array<number>(span).fill(0));
    const probes = new Array<number>(span).fill(0);
    const scale = 1 / Math.sqrt(d);
    const scores = new Float64Array(pos0 + T);
    for (let t = 0; t < T; t++) {
      if (!isProbeRow(f, pos0, t, T)) continue;
      const last = pos0 + t;
      for (let j = first; j <= last; j++) probes[j - first]++;
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / group);
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[(t * H + h) * d + c] * keys[j * E + g * d + c];
          scores[j] = dot * scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) sum += Math.exp(scores[j] - max);
        for (let j = first; j <= last; j++) sums[g][j - first] = fround(sums[g][j - first] + Math.exp(scores[j] - max) / sum);
      }
    }
    for (let j = first; j < pos0 + T; j++) {
      for (let g = 0; g < Hk; g++) this.acc[g][j] = j < pos0 ? fround(this.acc[g][j] + sums[g][j - first]) : sums[g][j - first];
      this.count[j] = (j < pos0 ? this.count[j] : 0) + probes[j - first];
    }
  }

  /** Salient flags of a block for KV head g: the top S by acc / count (cross products in f32), ties to lower positions. */
  salientFlags(block: number, g: number): boolean[] {
    const R = this.format.residual;
    const start = block * R;
    const sc = (i: number): [number, number] => [this.acc[g][start + i], Math.max(this.count[start + i], 1)];
    return Array.from({ length: R }, (_, r) => {
      const mine = sc(r);
      let rank = 0;
      for (let o = 0; o < R; o++) {
        const other = sc(o);
        const a = fround(other[0] * mine[1]);
        const b = fround(mine[0] * other[1]);
        if (a > b || (a === b && o < r)) rank++;
      }
      return rank < this.format.salientSlots;
    });
  }

  /** Quantize block `block`: bitmask, key (s, min), value channel and token scales, codes; then its dequantized rows. */
  private freeze(block: number): void {
    const f = this.format;
    const { residual: R, headDim: d, kvHeads: Hk, rowElems: E } = f;
    const start = block * R;
    const meta = new Array<number>(f.metaWords).fill(0);
    const codes = new Array<number>(f.codeWords).fill(0);
    const put = (tensor: number, g: number, salient: boolean, slot: number, c: number, bits: number, code: number) => {
      const bit = (slot * d + c) * bits;
      const w = codeBase(f, 0, tensor, g, salient) + (bit >>> 5);
      codes[w] = (codes[w] | (code << (bit & 31))) >>> 0;
    };
    // Value channel scales (c, 1/c) and per-token (lo, hi) of u = v · (1/c).
    const inverse = new Array<number>(E);
    for (let e = 0; e < E; e++) {
      let largest = 0;
      for (let r = 0; r < R; r++) largest = Math.max(largest, Math.abs(this.fpV[start + r][e]));
      const c = f16NearestSqrt(Math.min(Math.max(largest, 2 ** -24), 2 ** 24));
      const rc = f16NearestReciprocal(f16BitsToF32(c));
      inverse[e] = f16BitsToF32(rc);
      meta[f.channelScaleOffset + e] = (c | (rc << 16)) >>> 0;
    }
    const u = (r: number, e: number) => fround(this.fpV[start + r][e] * inverse[e]);
    for (let r = 0; r < R; r++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let e = 0; e < E; e++) {
        lo = Math.min(lo, u(r, e));
        hi = Math.max(hi, u(r, e));
      }
      meta[f.valueScaleOffset + r] = (f16BitsDown(lo) | (f16BitsUp(hi) << 16)) >>> 0;
    }
    for (let g = 0; g < Hk; g++) {
      const flags = this.salientFlags(block, g);
      flags.forEach((s, r) => {
        if (s) meta[f.maskOffset + g * f.maskWords + (r >> 5)] = (meta[f.maskOffset + g * f.maskWords + (r >> 5)] | (1 << (r & 31))) >>> 0;
      });
      for (const salient of [true, false]) {
        const members = flags.map((s, r) => (s === salient ? r : -1)).filter((r) => r >= 0);
        const bits = salient ? f.highBits : f.lowBits;
        // Keys: per channel over groups of G consecutive members of the subset.
        for (let g0 = 0; g0 < members.length; g0 += f.keyGroup) {
          const group = (salient ? 0 : f.keyGroupsSalient) + g0 / f.keyGroup;
          const part = members.slice(g0, g0 + f.keyGroup);
          for (let c = 0; c < d; c++) {
            const col = part.map((r) => this.fpK[start + r][g * d + c]);
            const [s, m] = groupScale(Math.min(...col), Math.max(...col), bits);
            meta[(g * f.keyGroups + group) * d + c] = packScale(s, m);
            part.forEach((r, k) => put(0, g, salient, g0 + k, c, bits, quantizeValue(col[k], s, m, bits)));
          }
        }
        // Values: the token's (lo, hi) with this head's bits.
        members.forEach((r, slot) => {
          const [s, lo] = zipValueScale(f, meta, 0, r, bits);
          for (let c = 0; c < d; c++) put(1, g, salient, slot, c, bits, quantizeValue(u(r, g * d + c), s, lo, bits));
        });
      }
    }
    this.codes.length = block * f.codeWords;
    this.codes.push(...codes);
    this.meta.length = block * f.metaWords;
    this.meta.push(...meta);
    for (let r = 0; r < R; r++) {
      this.deqK[start + r] = decodeZipRow(f, this.codes, this.meta, start + r, 0);
      this.deqV[start + r] = decodeZipRow(f, this.codes, this.meta, start + r, 1);
    }
  }
}

/** Every layer in the same zip format. Needs the step's queries: `attend(layer, k, v, q)`. */
export class ZipReferenceKv implements ReferenceKv {
  layers: ZipLayerReference[] = [];

  constructor(
    private readonly numLayers: number,
    private readonly format: ZipFormat,
    private readonly heads: number,
  ) {
    this.reset();
  }

  attend(layer: number, k: Float32Array, v: Float32Array, q?: Float32Array): { k: Float32Array; v: Float32Array } {
    if (!q) throw new Error('The zip reference cache needs the step queries to score saliency.');
    return this.layers[layer].step(k, v, q);
  }

  reset(): void {
    this.layers = Array.from({ length: this.numLayers }, () => new ZipLayerReference(this.format, this.heads));
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
