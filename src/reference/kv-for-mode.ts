/**
 * The CPU reference cache for a KV mode spec, built from the same parameters (src/kv/factory.ts) the GPU
 * cache uses, so a reference model run "in the same mode" quantizes and merges exactly as the kernels do
 * (in the rotated basis when the spec asks for rotation).
 */
import { mergeOptionsFor, quantFormatFor, zipFormatFor } from '../kv/factory';
import type { KvShape } from '../kv/types';
import type { KvModeSpec } from '../worker/api';
import { MergeReferenceKv } from './kv-merge';
import { QuantReferenceKv } from './kv-quant';
import { FullReferenceKv, type ReferenceKv } from './kv-reference';
import { RotatedReferenceKv } from './kv-rotated';
import { ZipReferenceKv } from './kv-zip';

export function referenceKvFor(shape: KvShape, spec: KvModeSpec): ReferenceKv {
  const layout = referenceLayoutFor(shape, spec);
  return spec.rotate ? new RotatedReferenceKv(layout, shape.numHeads, shape.numKvHeads, shape.headDim) : layout;
}

function referenceLayoutFor(shape: KvShape, spec: KvModeSpec): ReferenceKv {
  switch (spec.mode) {
    case 'full':
      return new FullReferenceKv(shape.numLayers);
    case 'int8':
    case 'kivi':
      return new QuantReferenceKv(shape.numLayers, quantFormatFor(shape, spec));
    case 'merge':
    case 'merge+kivi': {
      const base = (n: number): ReferenceKv =>
        spec.mode === 'merge' ? new FullReferenceKv(n) : new QuantReferenceKv(n, quantFormatFor(shape, { ...spec, mode: 'kivi', bits: spec.bits ?? 2 }));
      return new MergeReferenceKv(shape.numLayers, shape.numKvHeads, shape.headDim, mergeOptionsFor(shape, spec), base);
    }
    case 'zip':
      return new ZipReferenceKv(shape.numLayers, zipFormatFor(shape, spec), shape.numHeads);
  }
}
