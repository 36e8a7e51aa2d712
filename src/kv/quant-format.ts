/**
 * Parameters and byte formulas of the quantized KV layouts (docs/kv-compression.md §1), shared by the
 * GPU cache, its CPU reference and the accounting tests. The packed layout itself is described in
 * shaders/lib/kv_quant.wgsl.
 */

/** How one quantized layer stores K and V. */
export interface QuantFormat {
  /** E = kvHeads × headDim: elements of one token's K (or V) row. */
  rowElems: number;
  keyBits: 2 | 4 | 8;
  valueBits: 2 | 4 | 8;
  /** Keys per channel over `keyBlockTokens`-token blocks (KIVI), or per token in channel groups (int8). */
  keyGrouping: 'channel' | 'token';
  /** Tokens sharing one key (s, min) per channel, when keys are grouped per channel. */
  keyBlockTokens: number;
  /** Channels sharing one (s, min) per token (values, and keys grouped per token). Divides rowElems. */
  channelGroup: number;
  /** R: tokens held in full precision (a multiple of keyBlockTokens when keys are grouped per channel). */
  residual: number;
  /** Values leave the residual one at a time (KIVI's FIFO) or in whole R blocks like keys (merged directions). */
  valueFlush: 'fifo' | 'block';
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Build a format, checking the constraints the kernels rely on. */
export function quantFormat(o: {
  rowElems: number;
  keyBits: 2 | 4 | 8;
  valueBits: 2 | 4 | 8;
  keyGrouping: 'channel' | 'token';
  group: number;
  residual: number;
  valueFlush?: 'fifo' | 'block';
}): QuantFormat {
  if (![2, 4, 8].includes(o.keyBits) || ![2, 4, 8].includes(o.valueBits)) throw new RangeError('KV bits must be 2, 4 or 8.');
  if (!Number.isInteger(o.group) || o.group < 1) throw new RangeError(`KV group size must be a positive integer, got ${o.group}.`);
  if (!Number.isInteger(o.residual) || o.residual < 0) throw new RangeError(`KV residual window must be ≥ 0, got ${o.residual}.`);
  if (o.keyGrouping === 'channel' && (o.residual < o.group || o.residual % o.group !== 0)) {
    throw new RangeError(`Per-channel keys need a residual window R that is a positive multiple of G (R=${o.residual}, G=${o.group}).`);
  }
  return {
    rowElems: o.rowElems,
    keyBits: o.keyBits,
    valueBits: o.valueBits,
    keyGrouping: o.keyGrouping,
    keyBlockTokens: o.group,
    channelGroup: gcd(o.group, o.rowElems),
    residual: o.residual,
    valueFlush: o.valueFlush ?? 'fifo',
  };
}

/** u32 words of one token's codes at `bits` bits per element. */
export function wordsPerRow(rowElems: number, bits: number): number {
  return Math.ceil((rowElems * bits) / 32);
}

/** Tokens quantized in a cache holding n tokens (the rest are in the residual ring). */
export function quantizedCount(f: QuantFormat, n: number, isKey: boolean): number {
  if ((isKey && f.keyGrouping === 'channel') || (!isKey && f.valueFlush === 'block')) return Math.floor(n / f.residual) * f.residual;
  return Math.max(0, n - f.residual);
}

/** u32 (s, min) pairs of the K region for `capacity` tokens. */
export function keyScaleCount(f: QuantFormat, capacity: number): number {
  return f.keyGrouping === 'channel' ? (capacity / f.keyBlockTokens) * f.rowElems : capacity * (f.rowElems / f.channelGroup);
}

/** u32 (s, min) pairs of the V region for `capacity` tokens. */
export function valueScaleCount(f: QuantFormat, capacity: number): number {
  return capacity * (f.rowElems / f.channelGroup);
}
