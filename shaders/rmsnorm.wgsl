// RMSNorm per row: y[r, i] = x[r + row_offset, i] / sqrt(mean_i(x^2) + eps) * w[i].
// Used for the block norms ([T, hidden]), the final norm (row_offset selects the last row) and,
// with IN_PLACE, the per-head q/k norms of Qwen3 ([T * heads, head_dim]).
// Bindings: 0 Params, 1 x: f32 [rows, n] (read_write when IN_PLACE), 2 w: wt [n], 3 y: f32 [rows, n].
// Dispatch: (rows) workgroups of 64 invocations, one row each.
const WG: u32 = 64u;
#include reduce

struct Params { rows: u32, n: u32, row_offset: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
#if IN_PLACE
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> w: array<wt>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  if (row >= p.rows) { return; }
  let src = (row + p.row_offset) * p.n;
  var sq = 0.0;
  for (var i = lid; i < p.n; i += WG) {
    let v = x[src + i];
    sq += v * v;
  }
  let inv_rms = inverseSqrt(workgroup_sum(sq, lid) / f32(p.n) + p.eps);
  for (var i = lid; i < p.n; i += WG) {
#if IN_PLACE
    x[src + i] = x[src + i] * inv_rms * f32(w[i]);
#else
    y[row * p.n + i] = x[src + i] * inv_rms * f32(w[i]);
#endif
  }
}
