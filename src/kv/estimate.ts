/**
 * KV cache bytes a mode would allocate for a number of tokens, computed without a GPU from the same
 * formats and growth rule the cache layouts use (quant-format.ts, growth.ts, factory.ts). The model manager
 * shows these next to each model; tests/kv/estimate.test.ts checks them against real allocations.
 */
import type { KvModeSpec } from '../worker/api';
import { mergeOptionsFor, quantFormatFor, zipFormatFor } from './factory';
import { grownCapacity } from './growth';
import { mergedPairs } from './merge-cache';
import { rotationSignBytes } from './rotated-cache';
import { keyScaleCount, valueScaleCount, wordsPerRow, type QuantFormat } from './quant-format';
import type { KvShape } from './types';
import { zipSaliencyWords, zipScratchWords, type ZipFormat } from './zip-format';

/** Bytes BufferGroup really allocates for a request: a multiple of 4, at least 4. */
const allocated = (bytes: number): number => Math.max(4, Math.ceil(bytes / 4) * 4);

/** Full-precision layout (full-cache.ts): K and V per layer, capacity in 64-token blocks. */
function fullBytes(shape: KvShape, tokens: number, elementBytes: number): number {
  if (tokens <= 0 || shape.numLayers === 0) return 0;
  const block = 64;
  const capacity = Math.min(Math.ceil(tokens / block) * block, Math.max(tokens, shape.maxTokens));
  return shape.numLayers * 2 * allocated(capacity * shape.numKvHeads * shape.headDim * elementBytes);
}

/** Quantized layout (quant-cache.ts): codes, (s, min) scales and the residual ring per layer. */
function quantBytes(shape: KvShape, f: QuantFormat, tokens: number, elementBytes: number): number {
  if (tokens <= 0 || shape.numLayers === 0) return 0;
  let block = Math.max(64, f.keyBlockTokens, f.residual);
  if (block % f.keyBlockTokens !== 0) block = Math.ceil(block / f.keyBlockTokens) * f.keyBlockTokens;
  const capacity = grownCapacity(0, tokens, block, shape.maxTokens);
  const codes = capacity * (wordsPerRow(f.rowElems, f.keyBits) + wordsPerRow(f.rowElems, f.valueBits)) * 4;
  const scales = (keyScaleCount(f, capacity) + valueScaleCount(f, capacity)) * 4;
  const ring = 2 * f.residual * f.rowElems * elementBytes;
  return shape.numLayers * (allocated(codes) + allocated(scales) + allocated(ring));
}

/** Saliency-aware mixed precision (zip-cache.ts): per layer codes, scales, ring and saliency; one shared scratch. */
function zipBytes(shape: KvShape, f: ZipFormat, tokens: number, elementBytes: number): number {
  if (tokens <= 0 || shape.numLayers === 0) return 0;
  const block = f.residual * Math.max(1, Math.ceil(64 / f.residual));
  const blocks = grownCapacity(0, tokens, block, shape.maxTokens) / f.residual;
  const L = shape.numLayers;
  const scratch = Math.ceil((zipScratchWords(f, shape.numHeads, shape.maxStepTokens ?? 128) * 4) / (4 * L)) * 4 * L;
  const layer = allocated(blocks * f.codeWords * 4) + allocated(blocks * f.metaWords * 4) + allocated(2 * f.residual * f.rowElems * elementBytes) + allocated(zipSaliencyWords(f) * 4);
  return allocated(scratch) + L * layer;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Merged layout (merge-cache.ts): per pair of layers from S on, plus the base layout for the rest. */
function mergeBytes(shape: KvShape, spec: Extract<KvModeSpec, { mode: 'merge' | 'merge+kivi' }>, tokens: number, elementBytes: number): number {
  const o = mergeOptionsFor(shape, spec);
  const firsts = mergedPairs(shape.numLayers, o.startLayer);
  const baseShape = { ...shape, numLayers: shape.numLayers - 2 * firsts.length };
  const base =
    spec.mode === 'merge'
      ? fullBytes(baseShape, tokens, elementBytes)
      : quantBytes(baseShape, quantFormatFor(baseShape, { ...spec, mode: 'kivi', bits: spec.bits ?? 2 }), tokens, elementBytes);
  if (tokens <= 0 || firsts.length === 0) return base;
  const E = shape.numKvHeads * shape.headDim;
  const R = o.residual;
  const W = R + (shape.maxStepTokens ?? 128);
  const f = o.directionFormat;
  const g = f?.keyBlockTokens ?? 1;
  const lcm = (R * g) / gcd(R, g);
  const block = Math.ceil(Math.max(64, R) / lcm) * lcm;
  const capacity = grownCapacity(0, tokens, block, shape.maxTokens);
  const retainedPerBlock = Math.ceil(o.retention * R);
  const pair =
    allocated(4 * W * E * elementBytes) + // residual ring: 2 layers × K, V
    allocated(f ? capacity * (wordsPerRow(E, f.keyBits) + wordsPerRow(E, f.valueBits)) * 4 : capacity * 2 * E * elementBytes) +
    (f ? allocated((keyScaleCount(f, capacity) + valueScaleCount(f, capacity)) * 4) + allocated(2 * W * E * elementBytes) : 0) +
    allocated(capacity * 2 * shape.numKvHeads * 4 + capacity * 4 + W * 4) + // norms, slot map, distances
    allocated((capacity / R) * retainedPerBlock * 4 * E * elementBytes);
  return base + firsts.length * pair;
}

/**
 * Bytes a fresh cache of mode `spec` allocates to hold `tokens` tokens. `elementBytes` is the size of a
 * full-precision K/V element: 2 (f16, adapters with shader-f16) or 4 (f32).
 */
export function estimateKvBytes(shape: KvShape, spec: KvModeSpec, tokens: number, elementBytes: 2 | 4 = 2): number {
  const layout = layoutBytes(shape, spec, tokens, elementBytes);
  // A rotated cache adds its sign buffer (rotated-cache.ts), allocated with the layout's first buffers.
  return spec.rotate && tokens > 0 ? layout + allocated(rotationSignBytes(shape)) : layout;
}

function layoutBytes(shape: KvShape, spec: KvModeSpec, tokens: number, elementBytes: 2 | 4): number {
  switch (spec.mode) {
    case 'full':
      return fullBytes(shape, tokens, elementBytes);
    case 'int8':
    case 'kivi':
      return quantBytes(shape, quantFormatFor(shape, spec), tokens, elementBytes);
    case 'merge':
    case 'merge+kivi':
      return mergeBytes(shape, spec, tokens, elementBytes);
    case 'zip':
      return zipBytes(shape, zipFormatFor(shape, spec), tokens, elementBytes);
    default:
      throw new RangeError(`Unknown KV cache mode ${(spec as { mode: string }).mode}`);
  }
}
