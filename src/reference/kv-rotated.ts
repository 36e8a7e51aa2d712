/**
 * CPU reference of a rotated KV mode (src/kv/rotated-cache.ts): the inner mode stores and quantizes the
 * rotated K/V (and scores saliency with rotated queries); the rows it serves are rotated back before the
 * reference model's plain attention reads them. Since the rotation is orthogonal, q·(Hᵀk̂) = (Hq)·k̂ and
 * Σ p·Hᵀv̂ = Hᵀ Σ p·v̂: the same attention the GPU computes in the rotated basis.
 */
import { hadamardRotate, rotationSigns, ROTATION_SEED } from './hadamard';
import type { ReferenceKv } from './kv-reference';

/** A reference mode that rotates before `inner` quantizes. */
export class RotatedReferenceKv implements ReferenceKv {
  /** ±1 signs f32 [kvHeads, headDim], the same the GPU cache uploads. */
  readonly signs: Float32Array;

  constructor(
    readonly inner: ReferenceKv,
    private readonly numHeads: number,
    private readonly numKvHeads: number,
    private readonly headDim: number,
    seed = ROTATION_SEED,
  ) {
    this.signs = rotationSigns(numKvHeads, headDim, seed);
  }

  attend(layer: number, k: Float32Array, v: Float32Array, q?: Float32Array): { k: Float32Array; v: Float32Array } {
    const kvShape = { heads: this.numKvHeads, kvHeads: this.numKvHeads, headDim: this.headDim };
    const forward = (x: Float32Array, heads: number) => hadamardRotate(x.slice(), { ...kvShape, heads }, this.signs, 'forward');
    const rows = this.inner.attend(layer, forward(k, this.numKvHeads), forward(v, this.numKvHeads), q && forward(q, this.numHeads));
    return {
      k: hadamardRotate(rows.k.slice(), kvShape, this.signs, 'inverse'),
      v: hadamardRotate(rows.v.slice(), kvShape, this.signs, 'inverse'),
    };
  }

  reset(): void {
    this.inner.reset();
  }
}
