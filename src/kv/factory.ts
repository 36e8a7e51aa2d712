/**
 * Builds the KV cache layout a mode spec asks for.
 */
import type { GpuCaps } from '../gpu/device';
import type { KvModeSpec } from '../worker/api';
import { FullKvCache } from './full-cache';
import type { CacheOptions } from './growing-cache';
import { MergedKvCache } from './merge-cache';
import { quantFormat } from './quant-format';
import { QuantKvCache } from './quant-cache';
import { RotatedKvCache } from './rotated-cache';
import type { KvCache, KvShape } from './types';
import { ZipKvCache } from './zip-cache';
import { zipFormat, type ZipFormat } from './zip-format';
import type { MergeOptions } from './merge-cache';

/** Element type used for full-precision K/V on this device. */
export function fullPrecisionKvDtype(caps: GpuCaps, requested: 'auto' | 'f32' | 'f16' = 'auto'): 'f32' | 'f16' {
  if (requested === 'f16' && !caps.f16) throw new RangeError('f16 KV storage needs the shader-f16 feature, which this adapter lacks.');
  if (requested === 'auto') return caps.f16 ? 'f16' : 'f32';
  return requested;
}

/** Create the cache for `spec`: its layout, wrapped in a Hadamard rotation when `spec.rotate` is set. */
export function createKvCache(device: GPUDevice, caps: GpuCaps, shape: KvShape, spec: KvModeSpec, kvDtype: 'f32' | 'f16', options: CacheOptions = {}): KvCache {
  const layout = createLayout(device, caps, shape, spec, kvDtype, options);
  return spec.rotate ? new RotatedKvCache(device, shape, layout) : layout;
}

/** `options.saliency` is honoured by the layouts that evict in place (full, int8, kivi, zip); merged layouts ignore it. */
function createLayout(device: GPUDevice, caps: GpuCaps, shape: KvShape, spec: KvModeSpec, kvDtype: 'f32' | 'f16', options: CacheOptions): KvCache {
  switch (spec.mode) {
    case 'full':
      return new FullKvCache(device, shape, { dtype: kvDtype, ...options });
    case 'int8':
    case 'kivi':
      return new QuantKvCache(device, shape, quantFormatFor(shape, spec), kvDtype === 'f16' ? 2 : 4, spec.mode === 'kivi' ? `kivi-${spec.bits ?? 4}` : 'int8', options);
    case 'merge':
    case 'merge+kivi': {
      const o = mergeOptionsFor(shape, spec);
      const bytes = kvDtype === 'f16' ? 2 : 4;
      const makeBase = (baseShape: KvShape): KvCache =>
        spec.mode === 'merge'
          ? new FullKvCache(device, baseShape, { dtype: kvDtype })
          : new QuantKvCache(device, baseShape, quantFormatFor(baseShape, { ...spec, mode: 'kivi', bits: spec.bits ?? 2 }), bytes, 'kivi');
      const name = spec.mode === 'merge' ? 'merge' : `merge+kivi-${o.directionFormat?.keyBits}`;
      return new MergedKvCache(device, shape, o, bytes, makeBase, name);
    }
    case 'zip':
      return new ZipKvCache(device, shape, zipFormatFor(shape, spec), kvDtype === 'f16' ? 2 : 4, 'zip', options);
    default:
      throw new RangeError(`Unknown KV cache mode ${(spec as { mode: string }).mode}`);
  }
}

/** Default KIVI parameters (docs/kv-compression.md §1): G = 32, R = 64. */
export const KIVI_DEFAULTS = { bits: 4 as 2 | 4, groupSize: 32, residual: 64 };
/** Default int8 parameters: per-token groups of 32 channels, no residual window. */
export const INT8_DEFAULTS = { groupSize: 32, residual: 0 };

/** The quantized format of an `int8` or `kivi` spec for a model shape. */
export function quantFormatFor(shape: KvShape, spec: Extract<KvModeSpec, { mode: 'int8' | 'kivi' }> | (Omit<Extract<KvModeSpec, { mode: 'merge+kivi' }>, 'mode'> & { mode: 'kivi' })) {
  const rowElems = shape.numKvHeads * shape.headDim;
  if (spec.mode === 'int8') {
    const o = { ...INT8_DEFAULTS, ...stripUndefined(spec) };
    return quantFormat({ rowElems, keyBits: 8, valueBits: 8, keyGrouping: 'token', group: o.groupSize, residual: o.residual });
  }
  const o = { ...KIVI_DEFAULTS, ...stripUndefined(spec) };
  return quantFormat({ rowElems, keyBits: o.bits, valueBits: o.bits, keyGrouping: 'channel', group: o.groupSize, residual: o.residual });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Default MiniCache parameters: S = L/2, t = 0.6, γ = 0.05, blocks of R = 64 tokens. */
export const MERGE_DEFAULTS = { t: 0.6, retention: 0.05, residual: 64 };

/** Merge options of a `merge` or `merge+kivi` spec for a model shape. */
export function mergeOptionsFor(shape: KvShape, spec: Extract<KvModeSpec, { mode: 'merge' | 'merge+kivi' }>): MergeOptions {
  const o = { ...MERGE_DEFAULTS, startLayer: Math.floor(shape.numLayers / 2), ...stripUndefined(spec) };
  if (!Number.isInteger(o.startLayer) || o.startLayer < 0 || o.startLayer >= shape.numLayers) {
    throw new RangeError(`Merge start layer must be in 0..${shape.numLayers - 1}, got ${o.startLayer}.`);
  }
  const options: MergeOptions = { startLayer: o.startLayer, t: o.t, retention: o.retention, residual: o.residual };
  if (spec.mode === 'merge+kivi') {
    const q = { ...KIVI_DEFAULTS, bits: 2 as 2 | 4, ...stripUndefined(spec) };
    options.residual = q.residual;
    options.directionFormat = quantFormat({
      rowElems: shape.numKvHeads * shape.headDim,
      keyBits: q.bits,
      valueBits: q.bits,
      keyGrouping: 'channel',
      group: q.groupSize,
      residual: q.residual,
      valueFlush: 'block',
    });
  }
  return options;
}

/** Default ZipCache parameters (docs/kv-compression.md §2): half the tokens salient at 4 bits, the rest 2, G = 32, R = 64. */
export const ZIP_DEFAULTS = { salientFraction: 0.5, highBits: 4 as 4 | 8, lowBits: 2 as 2 | 4, groupSize: 32, residual: 64 };

/** The zip format of a `zip` spec for a model shape. */
export function zipFormatFor(shape: KvShape, spec: Extract<KvModeSpec, { mode: 'zip' }>): ZipFormat {
  const o = { ...ZIP_DEFAULTS, ...stripUndefined(spec) };
  return zipFormat({
    kvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    highBits: o.highBits,
    lowBits: o.lowBits,
    salientFraction: o.salientFraction,
    residual: o.residual,
    group: o.groupSize,
  });
}
