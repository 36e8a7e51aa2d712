/**
 * RMSNorm (shaders/rmsnorm.wgsl): block norms, the final norm of one row, and per-head q/k norms.
 */
import { f32 } from '../gpu/uniforms';
import type { Recorder } from '../gpu/plan';
import { vectorBuffer, type WeightMatrix } from '../gpu/tensor';

/** y[r] = rmsnorm(x[r + rowOffset]) * w for r < rows. */
export function rmsNorm(
  rec: Recorder,
  x: GPUBuffer /* f32 [*, n] */,
  w: WeightMatrix /* [1, n] */,
  y: GPUBuffer /* f32 [rows, n] */,
  rows: number,
  eps: number,
  rowOffset = 0,
): void {
  const pipeline = rec.pipelines.get({ shader: 'rmsnorm', variant: rec.variant });
  const params = rec.uniforms.alloc([rows, w.cols, rowOffset, f32(eps)]);
  rec.dispatch(`rmsnorm ${w.name}`, pipeline, { 0: params, 1: x, 2: vectorBuffer(w), 3: y }, [rows, 1, 1]);
}

/** x[r] = rmsnorm(x[r]) * w in place, for rows of length w.cols (per-head norms). */
export function rmsNormInPlace(rec: Recorder, x: GPUBuffer /* f32 [rows, n] */, w: WeightMatrix /* [1, n] */, rows: number, eps: number): void {
  const variant = { ...rec.variant, flags: { IN_PLACE: true } };
  const pipeline = rec.pipelines.get({ shader: 'rmsnorm', variant });
  const params = rec.uniforms.alloc([rows, w.cols, 0, f32(eps)]);
  rec.dispatch(`rmsnorm_in_place ${w.name}`, pipeline, { 0: params, 1: x, 2: vectorBuffer(w) }, [rows, 1, 1]);
}
