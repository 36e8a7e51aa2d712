// Library: causal multi-head attention with online softmax, one key per invocation per tile; used by the
// full-precision layout (attention_full.wgsl). Packed layouts use lib/attention_rows.wgsl.
// The including file declares the bindings `p: AttnParams` (uniform), `step: Step` (uniform),
// `q` and `out` (f32 [T, heads, head_dim]) and defines how its layout is read in place:
//   fn key_dot(j: u32, kvh: u32) -> f32        q_shared · K[j, kvh, :]   (unscaled)
//   fn value_at(j: u32, kvh: u32, c: u32) -> f32   V[j, kvh, c]
// One workgroup per (head, query token); query t at absolute position pos0 + t sees keys 0 ..= pos0 + t.
// Keys are visited in tiles of WG; each invocation scores one key of the tile, then owns up to
// MAX_D / WG output channels for the value accumulation. GQA: head h reads KV head h / (heads / kv_heads).
// Dispatch: (heads, T).
const WG: u32 = 64u;
const MAX_D: u32 = 256u;
const DIMS_PER_INVOCATION: u32 = MAX_D / WG;
#include reduce

#include attention_common

var<workgroup> tile_p: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x;
  let t = wg.y;
  let kvh = kv_head_of(h);
  let d = p.head_dim;
  let qbase = load_query(h, t, lid);

  let kv_end = step.pos0 + t + 1u;
  var m = -1e30;
  var l = 0.0;
  var acc: array<f32, DIMS_PER_INVOCATION>;
  for (var j0 = 0u; j0 < kv_end; j0 += WG) {
    let j = j0 + lid;
    var s = -1e30;
    if (j < kv_end) { s = key_dot(j, kvh) * p.scale; }
    let m_new = max(m, workgroup_max(s, lid));
    var e = 0.0;
    if (j < kv_end) { e = exp(s - m_new); }
    tile_p[lid] = e;
    let tile_sum = workgroup_sum(e, lid);
    let alpha = exp(m - m_new);
    l = l * alpha + tile_sum;
    let count = min(WG, kv_end - j0);
    for (var i = 0u; i < DIMS_PER_INVOCATION; i++) {
      let c = lid + i * WG;
      if (c < d) {
        var a = acc[i] * alpha;
        for (var jj = 0u; jj < count; jj++) { a += tile_p[jj] * value_at(j0 + jj, kvh, c); }
        acc[i] = a;
      }
    }
    m = m_new;
    workgroupBarrier();
  }
  for (var i = 0u; i < DIMS_PER_INVOCATION; i++) {
    let c = lid + i * WG;
    if (c < d) { out[qbase + c] = acc[i] / l; }
  }
}
