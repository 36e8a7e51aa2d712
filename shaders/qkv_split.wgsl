// After the fused q/k/v projection: split qkv: f32 [T, (heads + 2 · kv_heads) · d] into q [T, heads, d],
// k [T, kv_heads, d] and v [T, kv_heads, d]; with QK_NORM first RMS-normalize each q and k head (Qwen3:
// x / sqrt(mean(x²) + eps) · gain, gains wt [d]), then rotate q and k by RoPE at position rope_pos0 + t (lib/step.wgsl)
// (rotate-half convention as in rope.wgsl, angles through lib/rope_angle.wgsl).
// One invocation per (token, head of q | k | v), no barriers: d ≤ 256 values each.
// Bindings: 0 Params, 1 Step, 2 inv_freq: f32 [d/2], 3 qkv, 4 q, 5 k, 6 v, 7 q_gain, 8 k_gain (bound to
// inv_freq without QK_NORM). Dispatch: ceil(T · (heads + 2 · kv_heads) / 64).
struct Params { tokens: u32, heads: u32, kv_heads: u32, head_dim: u32, eps: f32, _p0: u32, _p1: u32, _p2: u32 }
#include step

override QK_NORM: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read> qkv: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;
@group(0) @binding(7) var<storage, read> q_gain: array<wt>;
@group(0) @binding(8) var<storage, read> k_gain: array<wt>;

const MAX_D: u32 = 256u;
#include rope_angle

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let slots = p.heads + 2u * p.kv_heads;
  let i = gid.x;
  if (i >= p.tokens * slots) { return; }
  let t = i / slots;
  let slot = i % slots;
  let d = p.head_dim;
  let src = i * d;
  if (slot >= p.heads + p.kv_heads) {
    let dst = (t * p.kv_heads + slot - p.heads - p.kv_heads) * d;
    for (var c = 0u; c < d; c++) { v[dst + c] = qkv[src + c]; }
    return;
  }
  let is_q = slot < p.heads;
  var row: array<f32, MAX_D>;
  for (var c = 0u; c < d; c++) { row[c] = qkv[src + c]; }
  if (QK_NORM) {
    var sq = 0.0;
    for (var c = 0u; c < d; c++) { sq += row[c] * row[c]; }
    let inv = inverseSqrt(sq / f32(d) + p.eps);
    for (var c = 0u; c < d; c++) {
      var g: f32;
      if (is_q) { g = f32(q_gain[c]); } else { g = f32(k_gain[c]); }
      row[c] = row[c] * inv * g;
    }
  }
  let half = d / 2u;
  let pos = f32(step.rope_pos0 + t);
  for (var j = 0u; j < half; j++) {
    let cs = rope_cos_sin(pos * inv_freq[j]);
    let x1 = row[j];
    let x2 = row[j + half];
    row[j] = x1 * cs.x - x2 * cs.y;
    row[j + half] = x2 * cs.x + x1 * cs.y;
  }
  if (is_q) {
    let dst = (t * p.heads + slot) * d;
    for (var c = 0u; c < d; c++) { q[dst + c] = row[c]; }
  } else {
    let dst = (t * p.kv_heads + slot - p.heads) * d;
    for (var c = 0u; c < d; c++) { k[dst + c] = row[c]; }
  }
}
