/**
 * The byte formulas of docs/kv-compression.md, written out independently of the layouts: a check that the
 * layouts store what the doc says (codes at b + 32/G bits, rings, norms, retained originals), to within
 * block rounding. Sizes in the app and in every other test come from the one accounting, src/kv/sizing.ts
 * (the real layout classes' allocations); these formulas are only the doc's side of that comparison.
 */
import type { MergeOptions } from '../../src/kv/merge-cache';
import { quantizedCount, type QuantFormat } from '../../src/kv/quant-format';
import type { KvShape } from '../../src/kv/types';
import { zipQuantizedCount, zipSaliencyWords, zipScratchWords, type ZipFormat } from '../../src/kv/zip-format';

/**
 * The doc's formula for one layer holding n tokens: quantized elements at b + 32/G bits, plus the
 * full-precision residual (R tokens × 2 × E × bytes per element).
 */
export function formulaLayerBytes(f: QuantFormat, n: number, residualElementBytes: number): number {
  const qk = quantizedCount(f, n, true);
  const qv = quantizedCount(f, n, false);
  const keyBits = f.keyBits + 32 / (f.keyGrouping === 'channel' ? f.keyBlockTokens : f.channelGroup);
  const valueBits = f.valueBits + 32 / f.channelGroup;
  return (qk * f.rowElems * keyBits + qv * f.rowElems * valueBits) / 8 + f.residual * 2 * f.rowElems * residualElementBytes;
}

/**
 * The doc's bytes for one merged pair holding n tokens: per merged token and tensor one direction of E
 * (b + 32/G bits when quantized, else full precision) and 2·Hk f16 norms, a slot-map entry, the retained
 * originals (k per R block, 2 layers × 2 tensors), plus the full-precision rings (2 layers × 2 tensors × W,
 * and the direction ring when quantized).
 */
export function formulaPairBytes(o: MergeOptions, shape: KvShape, n: number, elementBytes: number): number {
  const E = shape.numKvHeads * shape.headDim;
  const R = o.residual;
  const W = R + (shape.maxStepTokens ?? 128);
  const merged = Math.floor(n / R) * R;
  const f = o.directionFormat;
  const directionBits = f ? f.keyBits + 32 / f.keyBlockTokens + f.valueBits + 32 / f.channelGroup : 2 * 8 * elementBytes;
  const perToken = (E * directionBits) / 8 + 2 * shape.numKvHeads * 4 + 4;
  const retained = (merged / R) * Math.ceil(o.retention * R) * 4 * E * elementBytes;
  const rings = (4 + (f ? 2 : 0)) * W * E * elementBytes;
  return merged * perToken + retained + rings;
}

/**
 * The doc's formula for one layer holding n tokens, without block rounding: Q(n) quantized tokens at
 * r'·b_high + (1 − r')·b_low bits per element for K and V (r' = S/R), plus per token the key (s, min)
 * (32·keyGroups/R bits per channel), one value (lo, hi) pair, the channel scales (32/R bits per channel)
 * and the bitmask (Hk·32·⌈R/32⌉/R bits); plus the full-precision ring (2·R·E elements) and the saliency
 * accumulator ((Hk + 1)·R f32).
 */
export function zipFormulaLayerBytes(f: ZipFormat, n: number, ringElementBytes: number): number {
  const R = f.residual;
  const E = f.rowElems;
  const r = f.salientSlots / R;
  const codeBits = 2 * E * (r * f.highBits + (1 - r) * f.lowBits);
  const scaleBits = (E * 32 * f.keyGroups) / R + 32 + (E * 32) / R + (f.kvHeads * 32 * f.maskWords) / R;
  const quantized = zipQuantizedCount(f, n);
  return (quantized * (codeBits + scaleBits)) / 8 + 2 * R * E * ringElementBytes + zipSaliencyWords(f) * 4;
}

/** The formula for a whole cache: every layer plus the shared per-step scratch. */
export function zipFormulaCacheBytes(f: ZipFormat, layers: number, heads: number, maxStep: number, n: number, ringElementBytes: number): number {
  return layers * zipFormulaLayerBytes(f, n, ringElementBytes) + zipScratchWords(f, heads, maxStep) * 4;
}
