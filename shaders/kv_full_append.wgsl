// Full-precision KV cache append: copy the step's fresh keys and values (f32 [T, kv_heads * head_dim],
// keys after RoPE) into cache rows pos0 .. pos0 + T - 1, converting to kvt (to_kvt: clamped to ±65504 when f16).
// Bindings: 0 Params, 1 Step, 2 k_new, 3 v_new, 4 k_cache: kvt [capacity, kv_heads * head_dim], 5 v_cache.
// Dispatch: ceil(T * row_elems / 64), split over x and y above the per-dimension limit.
struct Params { row_elems: u32, row_stride: u32, _p1: u32, _p2: u32 }
#include step

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> k_new: array<f32>;
@group(0) @binding(3) var<storage, read> v_new: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<kvt>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<kvt>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= step.tokens * p.row_elems) { return; }
  let dst = step.pos0 * p.row_elems + i;
  k_cache[dst] = to_kvt(k_new[i]);
  v_cache[dst] = to_kvt(v_new[i]);
}
