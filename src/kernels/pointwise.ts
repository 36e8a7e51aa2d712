/**
 * Embedding gather, RoPE, residual add, SwiGLU and argmax: the kernels that are one pass over their data.
 */
import { BLOCK, isQuant, type WeightDtype } from '../gpu/block-types';
import { flatDispatch, type Recorder } from '../gpu/plan';
import type { ShaderVariant } from '../gpu/shader-assembly';
import { vectorBuffer, type WeightMatrix } from '../gpu/tensor';
import { f32 } from '../gpu/uniforms';

/**
 * The shader variant that reads weights stored as `dtype`: `variant` itself for f32/f16 (its `wt`), or with
 * the #if flags WQ and WQ_<TYPE> (e.g. WQ_Q4_K) that bind the weight as u32 words of ggml blocks: each part's
 * rows back to back in GGUF's layout from byte 0, the buffer padded by its uploader to a multiple of 4 bytes.
 */
export function weightVariant(variant: ShaderVariant, dtype: WeightDtype): ShaderVariant {
  if (!isQuant(dtype)) return variant;
  return { ...variant, flags: { ...variant.flags, WQ: true, [`WQ_${dtype.toUpperCase()}`]: true } };
}

/** Throw unless the rows of a block-quantized weight are whole blocks (kernels index rows by block). */
export function checkBlockRows(w: WeightMatrix): void {
  if (!isQuant(w.dtype)) return;
  const elems = BLOCK[w.dtype].elems;
  if (w.cols % elems !== 0) {
    throw new RangeError(`${w.name}: ${w.dtype} rows must be a whole number of ${elems}-element blocks, but the weight has ${w.cols} columns`);
  }
}

/** Output elements per invocation of embed.wgsl `main`: one, or one wq_group32 for ggml blocks. */
const EMBED_QUANT_ELEMS = 32;

/** out[t] = table[ids[t]] for `tokens` ids (dequantized when the table is ggml blocks); one dispatch per table part. */
export function embed(rec: Recorder, ids: GPUBuffer /* u32 [T] */, table: WeightMatrix /* [V, D] */, out: GPUBuffer /* f32 [T, D] */, tokens: number): void {
  checkBlockRows(table);
  const pipeline = rec.pipelines.get({ shader: 'embed', variant: weightVariant(rec.variant, table.dtype) });
  const perInvocation = isQuant(table.dtype) ? EMBED_QUANT_ELEMS : 1;
  for (const part of table.parts) {
    const params = rec.uniforms.alloc([table.cols, part.rowStart, part.rows, tokens]);
    rec.dispatch('embed', pipeline, { 0: params, 1: ids, 2: part.buffer, 3: out }, [Math.ceil(table.cols / perInvocation / 64), tokens, 1]);
  }
}

/** Rotate x: f32 [T, heads, headDim] in place at positions pos0 + t. */
export function rope(rec: Recorder, x: GPUBuffer, invFreq: GPUBuffer /* f32 [headDim / 2] */, tokens: number, heads: number, headDim: number): void {
  const pipeline = rec.pipelines.get({ shader: 'rope', variant: rec.variant });
  const params = rec.uniforms.alloc([tokens, heads, headDim, 0]);
  const { workgroups } = flatDispatch(Math.ceil((tokens * heads * headDim) / 2 / 64), rec.caps.maxComputeWorkgroupsPerDimension);
  rec.dispatch('rope', pipeline, { 0: params, 1: rec.step.buffer, 2: invFreq, 3: x }, workgroups);
}

/** Heads of one step: query heads, KV heads, head size. */
export interface HeadShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * Split the fused projection qkv: f32 [T, (H + 2Hk)·d] into q, k, v; per-head RMSNorm of q and k when
 * gains are given (Qwen3), then RoPE on q and k at positions pos0 + t. One dispatch.
 */
export function splitQkvRope(
  rec: Recorder,
  qkv: GPUBuffer,
  out: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer },
  invFreq: GPUBuffer /* f32 [headDim / 2] */,
  tokens: number,
  shape: HeadShape,
  qkNorm?: { q: WeightMatrix; k: WeightMatrix; eps: number },
): void {
  const pipeline = rec.pipelines.get({ shader: 'qkv_split', variant: rec.variant, overrides: { QK_NORM: Boolean(qkNorm) } });
  const params = rec.uniforms.struct({ tokens, heads: shape.heads, kv_heads: shape.kvHeads, head_dim: shape.headDim, eps: f32(qkNorm?.eps ?? 0) });
  const slots = tokens * (shape.heads + 2 * shape.kvHeads);
  rec.dispatch(
    'qkv_split_rope',
    pipeline,
    {
      0: params, 1: rec.step.buffer, 2: invFreq, 3: qkv, 4: out.q, 5: out.k, 6: out.v,
      7: qkNorm ? vectorBuffer(qkNorm.q) : invFreq, 8: qkNorm ? vectorBuffer(qkNorm.k) : invFreq,
    },
    [Math.ceil(slots / 64), 1, 1],
  );
}

function elementwise(rec: Recorder, entry: 'add_inplace' | 'swiglu', x: GPUBuffer, y: GPUBuffer, n: number): void {
  const pipeline = rec.pipelines.get({ shader: 'elementwise', entry, variant: rec.variant });
  const { workgroups, groupsPerRow } = flatDispatch(Math.ceil(n / 64), rec.caps.maxComputeWorkgroupsPerDimension);
  const params = rec.uniforms.alloc([n, groupsPerRow * 64, 0, 0]);
  rec.dispatch(entry, pipeline, { 0: params, 1: x, 2: y }, workgroups);
}

/** x += y over n elements (residual connection). */
export function addInPlace(rec: Recorder, x: GPUBuffer, y: GPUBuffer, n: number): void {
  elementwise(rec, 'add_inplace', x, y, n);
}

/** gate = silu(gate) * up over n elements. */
export function swiglu(rec: Recorder, gate: GPUBuffer, up: GPUBuffer, n: number): void {
  elementwise(rec, 'swiglu', gate, up, n);
}

/** What argmax writes when the row holds NaN or ±Inf (no token id is this large). */
export const NON_FINITE_TOKEN = 0xffffffff;

/** out[0] = argmax of row `row` of x: f32 [rows, n], or NON_FINITE_TOKEN when that row is not all finite. */
export function argmax(rec: Recorder, x: GPUBuffer, n: number, row: number, out: GPUBuffer /* u32 [1] */): void {
  const pipeline = rec.pipelines.get({ shader: 'argmax', entry: rec.caps.softwareAdapter ? 'main_serial' : 'main', variant: rec.variant });
  const params = rec.uniforms.alloc([n, row, 0, 0]);
  rec.dispatch('argmax', pipeline, { 0: params, 1: x, 2: out }, [1, 1, 1]);
}
