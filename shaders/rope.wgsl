// Rotary position embedding, rotate-half convention (HF transformers), in place on x: f32 [T, heads, d].
// For i < d/2 at RoPE position p = rope_pos0 + t (lib/step.wgsl): angle = p * inv_freq[i];
//   x[i] = x1 cos - x2 sin,  x[i + d/2] = x2 cos + x1 sin   (x1 = x[i], x2 = x[i + d/2]).
// The angle is reduced to [-pi, pi] in two steps (Cody-Waite, lib/rope_angle.wgsl) so sin/cos stay accurate at long contexts.
// Bindings: 0 Params, 1 Step, 2 inv_freq: f32 [d/2], 3 x: f32 [T, heads, d].
// Dispatch: ceil(T * heads * d/2 / 64), one invocation per rotated pair.
struct Params { tokens: u32, heads: u32, head_dim: u32, _pad: u32 }
#include step

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

#include rope_angle

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let half = p.head_dim / 2u;
  if (i >= p.tokens * p.heads * half) { return; }
  let j = i % half;
  let row = i / half;
  let t = row / p.heads;
  let angle = f32(step.rope_pos0 + t) * inv_freq[j];
  let cs = rope_cos_sin(angle);
  let c = cs.x;
  let s = cs.y;
  let base = row * p.head_dim;
  let x1 = x[base + j];
  let x2 = x[base + j + half];
  x[base + j] = x1 * c - x2 * s;
  x[base + j + half] = x2 * c + x1 * s;
}
