/**
 * y[T, N] = x[T, K] · Wᵀ (+ b): GEMV for decode steps, a tiled matmul for prefill chunks (shaders/matmul.wgsl).
 */
import type { Recorder } from '../gpu/plan';
import { vectorBuffer, type WeightMatrix } from '../gpu/tensor';

/** Record y = x·Wᵀ (+ bias) for `tokens` rows of x. */
export function linear(
  rec: Recorder,
  x: GPUBuffer /* f32 [T, K] */,
  w: WeightMatrix /* [N, K] */,
  y: GPUBuffer /* f32 [T, N] */,
  tokens: number,
  bias?: WeightMatrix /* [1, N] */,
): void {
  const useGemv = tokens <= 2 && w.cols % 4 === 0;
  const pipeline = rec.pipelines.get({
    shader: 'matmul',
    entry: useGemv ? 'gemv' : 'tiled',
    variant: rec.variant,
    overrides: { HAS_BIAS: Boolean(bias) },
  });
  const max = rec.caps.maxComputeWorkgroupsPerDimension;
  for (const part of w.parts) {
    const params = rec.uniforms.alloc([tokens, w.cols, part.rows, part.rowStart, w.rows]);
    let workgroups: [number, number, number];
    if (useGemv) {
      const blocks = Math.ceil(part.rows / 4);
      // The shader maps (x, z) to a block linearly; surplus blocks in the last z row store nothing.
      workgroups = [Math.min(blocks, max), tokens, Math.ceil(blocks / max)];
    } else {
      workgroups = [Math.ceil(part.rows / 32), Math.ceil(tokens / 32), 1];
    }
    rec.dispatch(
      `linear ${w.name}`,
      pipeline,
      { 0: params, 1: x, 2: part.buffer, 3: bias ? vectorBuffer(bias) : part.buffer, 4: y },
      workgroups,
    );
  }
}
