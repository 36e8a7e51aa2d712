/**
 * Parameters, packed layout and byte formulas of the `zip` KV layout: ZipCache-style saliency-aware mixed
 * precision (docs/kv-compression.md §2), shared by the GPU cache (zip-cache.ts), its WGSL kernels
 * (shaders/lib/zip_layout.wgsl, kv_zip_append.wgsl, attention_zip.wgsl), the CPU reference
 * (src/reference/kv-zip.ts) and the accounting tests.
 *
 * Streaming. Tokens arrive in a full-precision residual ring; positions below Q(n) = ⌊n/R⌋·R are quantized
 * in whole R-token blocks. A block's precision is decided once, when it completes, and then frozen:
 *  - Saliency. Probe queries (every decode token; in a prefill chunk the last ⌈T/20⌉ rows plus the rows
 *    whose position hashes to 0 mod 20) add their softmax probabilities (over the full row, from the
 *    attention kernel's row max and sum) of every not-yet-quantized token, summed over the query heads of
 *    each KV head's GQA group. Each token also counts the probes at positions ≥ its own. Its score is
 *    acc / count (ZipCache's normalized attention), kept per KV head.
 *  - Selection. Per block and KV head the S = round(r·R) best-scoring tokens (ties: lower position) are
 *    salient, stored at b_high bits; the other R − S at b_low bits. A bitmask records which.
 *  - Keys: per channel as in KIVI, within each subset: the salient tokens of a block (in position order)
 *    form groups of G, and so do the regular ones; each group and channel has an f16 (s, min).
 *  - Values: channel-separable tokenwise. Per block and channel c = sqrt(max_t |V[t, ch]|) (as the f16
 *    nearest to it, with the f16 nearest to 1/c); each token row u = V·(1/c) over all E channels gets one
 *    f16 (lo, hi) pair (rounded outward), its codes use s = (hi − lo)/(2^b − 1) rounded up to f16 with the
 *    bits of the token's KV head, and x̂ = (code·s + lo)·c. (c and the stored 1/c are both f16, so
 *    c·(1/c) differs from 1 by under 2^-11: a relative error well below any quantization step.)
 * Every rounding is decided with exact f32 arithmetic (f16 neighbours are chosen by comparisons whose
 * products are exact), so GPU and CPU reference agree bit for bit given the same inputs and scores.
 *
 * Per step and layer, on the GPU: attention (reads the layout in place, writes each row's softmax max and
 * sum) → probe scoring of the ring and fresh tokens → for each completed block: selection, key scales,
 * value channel and token scales, K and V codes → fresh rows that stay unquantized enter the ring.
 *
 * Layout of one layer (all indexed by block b = position / R):
 *   codes   u32 [blocks, 2 tensors (K, V), Hk, headWords]: per (block, tensor, head) the S salient rows
 *           (d codes each, b_high bits) packed as one bit stream, then the R − S regular rows at b_low bits
 *           from word `salientWords`; code i of a stream at bit i·bits.
 *   meta    u32 [blocks, metaWords]: key (s, min) [Hk, keyGroups, d] | value (lo, hi) [R] |
 *           channel (c, 1/c) [E] | bitmask [Hk, maskWords] (bit i: token i of the block is salient).
 *   ring    kvt [2 tensors, R, E]: positions [Q(n), n) at slot p % R.
 *   saliency f32 [acc Hk × R | count R]: scores of the ring's tokens, at slot p % R.
 * Plus one scratch shared by all layers, f32 [row (max, sum) maxStep × H × 2 | fresh acc Hk × maxStep |
 * fresh count maxStep], for the scores of the step's own tokens.
 */

/** Every parameter and derived size of a zip layer. */
export interface ZipFormat {
  kvHeads: number;
  headDim: number;
  /** E = kvHeads × headDim. */
  rowElems: number;
  highBits: 4 | 8;
  lowBits: 2 | 4;
  /** r: the salient fraction asked for. */
  salientFraction: number;
  /** R: block size and residual window. */
  residual: number;
  /** G: tokens per key (s, min) group within a subset. */
  keyGroup: number;
  /** S = round(r·R): salient tokens per block and KV head. */
  salientSlots: number;
  /** ⌈S/G⌉ key groups of the salient subset, then ⌈(R−S)/G⌉ of the regular one. */
  keyGroupsSalient: number;
  keyGroups: number;
  /** ⌈R/32⌉ words of one head's bitmask in a block. */
  maskWords: number;
  /** Words of one (block, tensor, head)'s salient codes, and of all its codes. */
  salientWords: number;
  headWords: number;
  /** Code words per block: 2 × Hk × headWords. */
  codeWords: number;
  /** Offsets inside a block's meta record, and its size in words. */
  valueScaleOffset: number;
  channelScaleOffset: number;
  maskOffset: number;
  metaWords: number;
  /** One probe in this many rows (the doc's 5%): the last ⌈T/period⌉ rows plus those hashing to 0. */
  probePeriod: number;
}

/** Build a zip format, checking the constraints the kernels rely on. */
export function zipFormat(o: {
  kvHeads: number;
  headDim: number;
  highBits: 4 | 8;
  lowBits: 2 | 4;
  salientFraction: number;
  residual: number;
  group: number;
}): ZipFormat {
  if (![4, 8].includes(o.highBits)) throw new RangeError(`zip high bits must be 4 or 8, got ${o.highBits}.`);
  if (![2, 4].includes(o.lowBits)) throw new RangeError(`zip low bits must be 2 or 4, got ${o.lowBits}.`);
  if (o.lowBits > o.highBits) throw new RangeError(`zip low bits (${o.lowBits}) exceed high bits (${o.highBits}).`);
  if (!(o.salientFraction >= 0 && o.salientFraction <= 1)) throw new RangeError(`Salient fraction must be in [0, 1], got ${o.salientFraction}.`);
  if (!Number.isInteger(o.residual) || o.residual < 1 || o.residual > 1024) throw new RangeError(`zip block R must be an integer in 1..1024, got ${o.residual}.`);
  if (!Number.isInteger(o.group) || o.group < 1) throw new RangeError(`zip key group G must be a positive integer, got ${o.group}.`);
  if (o.headDim > 256) throw new RangeError(`zip attention supports head dims up to 256, got ${o.headDim}.`);
  const R = o.residual;
  const d = o.headDim;
  const S = Math.round(o.salientFraction * R);
  const keyGroupsSalient = Math.ceil(S / o.group);
  const keyGroups = keyGroupsSalient + Math.ceil((R - S) / o.group);
  const maskWords = Math.ceil(R / 32);
  const salientWords = Math.ceil((S * d * o.highBits) / 32);
  const headWords = salientWords + Math.ceil(((R - S) * d * o.lowBits) / 32);
  const E = o.kvHeads * d;
  const valueScaleOffset = o.kvHeads * keyGroups * d;
  const channelScaleOffset = valueScaleOffset + R;
  const maskOffset = channelScaleOffset + E;
  return {
    kvHeads: o.kvHeads,
    headDim: d,
    rowElems: E,
    highBits: o.highBits,
    lowBits: o.lowBits,
    salientFraction: o.salientFraction,
    residual: R,
    keyGroup: o.group,
    salientSlots: S,
    keyGroupsSalient,
    keyGroups,
    maskWords,
    salientWords,
    headWords,
    codeWords: 2 * o.kvHeads * headWords,
    valueScaleOffset,
    channelScaleOffset,
    maskOffset,
    metaWords: maskOffset + o.kvHeads * maskWords,
    probePeriod: 20,
  };
}

/** Tokens quantized in a layer holding n tokens: whole R blocks. */
export function zipQuantizedCount(f: ZipFormat, n: number): number {
  return Math.floor(n / f.residual) * f.residual;
}

/** Integer hash of a position (lowbias32); WGSL `probe_hash` in kv_zip_append.wgsl is the same. */
export function probeHash(p: number): number {
  let x = p >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Whether row t of a T-row step starting at pos0 is a saliency probe: one of the last ⌈T/period⌉, or hashed in. */
export function isProbeRow(f: ZipFormat, pos0: number, t: number, T: number): boolean {
  return t + Math.ceil(T / f.probePeriod) >= T || probeHash(pos0 + t) % f.probePeriod === 0;
}

/** Words of the per-step scratch shared by all layers: row stats, fresh-token accumulators and counts. */
export function zipScratchWords(f: ZipFormat, heads: number, maxStep: number): number {
  return maxStep * (2 * heads + f.kvHeads + 1);
}

/** Words of a layer's persistent saliency accumulator: acc [Hk, R] and count [R]. */
export function zipSaliencyWords(f: ZipFormat): number {
  return (f.kvHeads + 1) * f.residual;
}
