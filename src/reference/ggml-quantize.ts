/**
 * ggml's reference quantizers (ggml-quants.c quantize_row_*_ref, which llama-quantize uses when no
 * importance matrix is given), ported step for step in f32 (Math.fround after every operation, in C's
 * evaluation order, without FMA contraction): the bytes are what llama.cpp writes for the same input,
 * up to the last-bit differences an FMA-contracting C build may introduce in the K-quant searches.
 */
import { BLOCK, rowBytes, type QuantType } from '../gpu/block-types';
import { f16ToF32, f32ToF16, scaleMinK4, writeF16Bits } from './ggml-blocks';

const f = Math.fround;
const GROUP_MAX_EPS = f(1e-15);
const TENTH = f(0.1);

/** ggml's nearest_int: round half to even through the 1.5·2²³ magic constant (|x| < 2²²). */
function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

/** C's roundf: half away from zero. */
function roundAway(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}

/** f16 round trip as ggml stores a scale and reads it back. */
function storeF16(y: Uint8Array, o: number, x: number): number {
  const bits = f32ToF16(x);
  writeF16Bits(y, o, bits);
  return f16ToF32(bits);
}

type RowQuantizer = (x: Float32Array, y: Uint8Array) => void;

// ---- 32-element blocks ------------------------------------------------------------------------------

/** The value of largest magnitude (first one wins ties), as q4_0/q5_0 pick it. */
function signedAbsMax(x: Float32Array): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < x.length; j++) {
    if (amax < Math.abs(x[j])) {
      amax = Math.abs(x[j]);
      max = x[j];
    }
  }
  return max;
}

function minMax(x: Float32Array): [number, number] {
  let min = f(3.4028234663852886e38);
  let max = -min;
  for (let j = 0; j < x.length; j++) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  return [min, max];
}

function q4_0(x: Float32Array, y: Uint8Array): void {
  const d = f(signedAbsMax(x) / -8);
  const id = d ? f(1 / d) : 0;
  storeF16(y, 0, d);
  for (let j = 0; j < 16; j++) {
    const x0 = f(x[j] * id);
    const x1 = f(x[16 + j] * id);
    const q0 = Math.min(15, Math.trunc(f(x0 + 8.5)));
    const q1 = Math.min(15, Math.trunc(f(x1 + 8.5)));
    y[2 + j] = q0 | (q1 << 4);
  }
}

function q4_1(x: Float32Array, y: Uint8Array): void {
  const [min, max] = minMax(x);
  const d = f(f(max - min) / 15);
  const id = d ? f(1 / d) : 0;
  storeF16(y, 0, d);
  storeF16(y, 2, min);
  for (let j = 0; j < 16; j++) {
    const q0 = Math.min(15, Math.trunc(f(f(f(x[j] - min) * id) + 0.5)));
    const q1 = Math.min(15, Math.trunc(f(f(f(x[16 + j] - min) * id) + 0.5)));
    y[4 + j] = q0 | (q1 << 4);
  }
}

function writeU32(y: Uint8Array, o: number, v: number): void {
  for (let i = 0; i < 4; i++) y[o + i] = (v >>> (8 * i)) & 0xff;
}

function q5_0(x: Float32Array, y: Uint8Array): void {
  const d = f(signedAbsMax(x) / -16);
  const id = d ? f(1 / d) : 0;
  storeF16(y, 0, d);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const q0 = Math.min(31, Math.trunc(f(f(x[j] * id) + 16.5)));
    const q1 = Math.min(31, Math.trunc(f(f(x[16 + j] * id) + 16.5)));
    y[6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
    qh |= ((q0 & 0x10) >> 4) << j;
    qh |= ((q1 & 0x10) >> 4) << (j + 16);
  }
  writeU32(y, 2, qh >>> 0);
}

function q5_1(x: Float32Array, y: Uint8Array): void {
  const [min, max] = minMax(x);
  const d = f(f(max - min) / 31);
  const id = d ? f(1 / d) : 0;
  storeF16(y, 0, d);
  storeF16(y, 2, min);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const q0 = Math.trunc(f(f(f(x[j] - min) * id) + 0.5)) & 0xff;
    const q1 = Math.trunc(f(f(f(x[16 + j] - min) * id) + 0.5)) & 0xff;
    y[8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
    qh |= ((q0 & 0x10) >> 4) << j;
    qh |= ((q1 & 0x10) >> 4) << (j + 16);
  }
  writeU32(y, 4, qh >>> 0);
}

function q8_0(x: Float32Array, y: Uint8Array): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[j]));
  const d = f(amax / 127);
  const id = d ? f(1 / d) : 0;
  storeF16(y, 0, d);
  for (let j = 0; j < 32; j++) y[2 + j] = roundAway(f(x[j] * id)) & 0xff;
}

// ---- K-quants -----------------------------------------------------------------------------------------

/**
 * ggml's make_qkx2_quants: scale and min of an asymmetric nmax-level quantization of x (weighted least
 * squares over a grid of nstep + 1 trial scales). Writes the levels to L; returns [scale, -min].
 */
function makeQkx2Quants(nmax: number, x: Float32Array, weights: Float32Array, L: Uint8Array, rmin: number, rdelta: number, nstep: number): [number, number] {
  const n = x.length;
  const Laux = new Uint8Array(n);
  let min = x[0];
  let max = x[0];
  let sumW = weights[0];
  let sumX = f(sumW * x[0]);
  for (let i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const w = weights[i];
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * x[i]));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0);
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    L[i] = clamp(nearestInt(f(iscale * f(x[i] - min))), 0, nmax);
    const diff = f(f(f(scale * L[i]) + min) - x[i]);
    bestError = f(bestError + f(weights[i] * f(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // min moves with each better trial, and the next trial's grid with it (as in ggml).
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f(iscale * f(x[i] - min))), 0, nmax);
      Laux[i] = l;
      const wl = f(weights[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]) + thisMin) - x[i]);
        curError = f(curError + f(weights[i] * f(diff * diff)));
      }
      if (curError < bestError) {
        L.set(Laux);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** q4_k (nmax 15) and q5_k (nmax 31): 8 sub-blocks of 32 with 6-bit scales and mins. Returns the levels. */
function kScalesMins(x: Float32Array, y: Uint8Array, nmax: number, rmin: number, nstep: number): Uint8Array {
  const L = new Uint8Array(256);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const weights = new Float32Array(32);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const xs = x.subarray(32 * j, 32 * j + 32);
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(xs[l] * xs[l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(xs[l]));
    [scales[j], mins[j]] = makeQkx2Quants(nmax, xs, weights, L.subarray(32 * j, 32 * j + 32), rmin, TENTH, nstep);
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = y.subarray(4, 16);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j])) & 0xff);
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      sc[j - 4] |= (ls >> 4) << 6;
      sc[j] |= (lm >> 4) << 6;
    }
  }
  const d = storeF16(y, 0, f(maxScale / 63));
  const dmin = storeF16(y, 2, f(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(y, 4, j);
    const dj = f(d * s);
    if (!dj) continue;
    const dm = f(dmin * m);
    for (let i = 0; i < 32; i++) L[32 * j + i] = clamp(nearestInt(f(f(x[32 * j + i] + dm) / dj)), 0, nmax);
  }
  return L;
}

function q4_k(x: Float32Array, y: Uint8Array): void {
  const L = kScalesMins(x, y, 15, -1, 20);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) y[16 + 32 * c + l] = L[64 * c + l] | (L[64 * c + l + 32] << 4);
  }
}

function q5_k(x: Float32Array, y: Uint8Array): void {
  const L = kScalesMins(x, y, 31, -0.5, 15);
  const qh = 16;
  for (let c = 0; c < 4; c++) {
    const m1 = 1 << (2 * c), m2 = 2 << (2 * c);
    for (let j = 0; j < 32; j++) {
      let l1 = L[64 * c + j];
      let l2 = L[64 * c + j + 32];
      if (l1 > 15) { l1 -= 16; y[qh + j] |= m1; }
      if (l2 > 15) { l2 -= 16; y[qh + j] |= m2; }
      y[48 + 32 * c + j] = l1 | (l2 << 4);
    }
  }
}

/** ggml's make_qx_quants with rmse_type 1 (weights x², no importance matrix): a symmetric scale search. */
function makeQxQuants(nmax: number, x: Float32Array, L: Uint8Array): number {
  const n = x.length;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0);
    return 0;
  }
  // Σ w·x·l and Σ w·l² with w = x², for the levels of inverse scale `iscale`; writes them to L if asked.
  const sums = (iscale: number, write: boolean): [number, number] => {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f(iscale * x[i])), -nmax, nmax - 1);
      if (write) L[i] = l + nmax;
      const w = f(x[i] * x[i]);
      sumlx = f(sumlx + f(f(w * x[i]) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = sums(f(-nmax / max), true);
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f(-f(nmax + f(TENTH * is)) / max);
    [sumlx, suml2] = sums(iscale, false);
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      sums(iscale, true);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

function q6_k(x: Float32Array, y: Uint8Array): void {
  const L = new Uint8Array(256);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    scales[ib] = makeQxQuants(32, x.subarray(16 * ib, 16 * ib + 16), L.subarray(16 * ib, 16 * ib + 16));
    const abs = Math.abs(scales[ib]);
    if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scales[ib]; }
  }
  if (maxAbsScale < GROUP_MAX_EPS) return; // an all-zero block (d = +0)
  const iscale = f(-128 / maxScale);
  const d = storeF16(y, 208, f(1 / iscale));
  for (let ib = 0; ib < 16; ib++) y[192 + ib] = Math.min(127, nearestInt(f(iscale * scales[ib]))) & 0xff;
  for (let j = 0; j < 16; j++) {
    const dj = f(d * ((y[192 + j] << 24) >> 24));
    if (!dj) continue;
    for (let i = 0; i < 16; i++) L[16 * j + i] = clamp(nearestInt(f(x[16 * j + i] / dj)), -32, 31) + 32;
  }
  for (let n = 0; n < 2; n++) {
    const ql = 64 * n, qh = 128 + 32 * n, j = 128 * n;
    for (let l = 0; l < 32; l++) {
      const a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
      y[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      y[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      y[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}

const QUANTIZERS: Record<QuantType, RowQuantizer> = { q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k };

/** Quantize `data` [rows, cols] (f32, row-major) to `type` blocks, rows back to back, as ggml's *_ref quantizers. */
export function quantize(type: QuantType, data: Float32Array, rows: number, cols: number): Uint8Array {
  if (data.length !== rows * cols) throw new RangeError(`quantize: ${data.length} values are not [${rows}, ${cols}]`);
  const { elems, bytes } = BLOCK[type];
  const out = new Uint8Array(rows * rowBytes(type, cols));
  const x = Float32Array.from(data); // f32 values, as the C code reads them
  const quantizeBlock = QUANTIZERS[type];
  for (let i = 0; i < rows * cols / elems; i++) {
    quantizeBlock(x.subarray(i * elems, (i + 1) * elems), out.subarray(i * bytes, (i + 1) * bytes));
  }
  return out;
}
