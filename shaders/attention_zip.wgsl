// Attention over a `zip` KV layer read in place (layout in lib/zip_layout.wgsl), causal, with online softmax.
// Positions below Q(pos0) are dequantized from the mixed-precision codes inside the dot product and the value
// sum; positions [Q(pos0), pos0) come from the full-precision ring; this step's own positions from its fresh
// f32 rows. Besides the output, each (query row, head) writes its softmax max and sum to the scratch, so the
// saliency probes (kv_zip_append.wgsl: probe_scores) get exact probabilities by scoring only the ring tokens.
// One workgroup per (head, query token); each invocation scores one key of a tile of WG, locating it in its
// block once (tile_loc, tile_vscale), then owns up to MAX_D / WG output channels. GQA: head h reads KV head
// h / (heads / kv_heads). Dispatch: (heads, T).
// Bindings: 0 ZipParams, 1 Step, 2 q f32 [T, H, d], 3 out f32 [T, H, d], 4 k_fresh, 5 v_fresh f32 [T, E],
//           6 ring kvt [2, R, E], 7 codes u32, 8 block_meta u32, 9 scratch f32 (row stats at [t, h, 2]).
const WG: u32 = 64u;
const MAX_D: u32 = 256u;
const DIMS_PER_INVOCATION: u32 = MAX_D / WG;
struct Step { pos0: u32, kv_len: u32, tokens: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> zp: ZipParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> k_fresh: array<f32>;
@group(0) @binding(5) var<storage, read> v_fresh: array<f32>;
@group(0) @binding(6) var<storage, read> ring: array<kvt>;
@group(0) @binding(7) var<storage, read> codes: array<u32>;
@group(0) @binding(8) var<storage, read> block_meta: array<u32>;
@group(0) @binding(9) var<storage, read_write> scratch: array<f32>;

#include reduce
#include f16
#include zip_layout

var<workgroup> q_shared: array<f32, MAX_D>;
var<workgroup> tile_p: array<f32, WG>;
var<workgroup> tile_loc: array<u32, WG>;
var<workgroup> tile_vscale: array<vec2f, WG>;

// q · K[j, kvh, :] for a full-precision position (ring or fresh).
fn key_dot_fp(j: u32, kvh: u32) -> f32 {
  let e0 = kvh * zp.head_dim;
  var s = 0.0;
  if (j >= step.pos0) {
    let base = (j - step.pos0) * zp.row_elems + e0;
    for (var c = 0u; c < zp.head_dim; c++) { s += q_shared[c] * k_fresh[base + c]; }
  } else {
    let base = (j % zp.residual) * zp.row_elems + e0;
    for (var c = 0u; c < zp.head_dim; c++) { s += q_shared[c] * f32(ring[base + c]); }
  }
  return s;
}

// q · K[j, kvh, :] for a quantized position at `loc` of its block.
fn key_dot_quant(block: u32, kvh: u32, loc: u32) -> f32 {
  var s = 0.0;
  for (var c = 0u; c < zp.head_dim; c++) { s += q_shared[c] * zip_key(block, kvh, loc, c); }
  return s;
}

// V[j, kvh, c], using the tile's cached location and value scale for quantized positions.
fn value_at(j: u32, kvh: u32, c: u32, quantized_end: u32, loc: u32, sm: vec2f) -> f32 {
  let e = kvh * zp.head_dim + c;
  if (j >= step.pos0) { return v_fresh[(j - step.pos0) * zp.row_elems + e]; }
  if (j >= quantized_end) { return f32(ring[(zp.residual + j % zp.residual) * zp.row_elems + e]); }
  return zip_value(j / zp.residual, kvh, loc, c, sm);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x;
  let t = wg.y;
  let kvh = h / (zp.heads / zp.kv_heads);
  let d = zp.head_dim;
  let qbase = (t * zp.heads + h) * d;
  for (var c = lid; c < d; c += WG) { q_shared[c] = q[qbase + c]; }
  workgroupBarrier();

  let quantized_end = zip_quantized_count(step.pos0);
  let kv_end = step.pos0 + t + 1u;
  var m = -1e30;
  var l = 0.0;
  var acc: array<f32, DIMS_PER_INVOCATION>;
  for (var j0 = 0u; j0 < kv_end; j0 += WG) {
    let j = j0 + lid;
    var s = -1e30;
    if (j < kv_end) {
      if (j < quantized_end) {
        let block = j / zp.residual;
        let loc = zip_locate(block, kvh, j % zp.residual);
        tile_loc[lid] = loc;
        tile_vscale[lid] = value_scale(block, j % zp.residual, loc_bits(loc));
        s = key_dot_quant(block, kvh, loc) * zp.score_scale;
      } else {
        s = key_dot_fp(j, kvh) * zp.score_scale;
      }
    }
    // The reductions below synchronize the workgroup, so tile_loc and tile_vscale are visible after them.
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
        for (var jj = 0u; jj < count; jj++) { a += tile_p[jj] * value_at(j0 + jj, kvh, c, quantized_end, tile_loc[jj], tile_vscale[jj]); }
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
  if (lid == 0u) {
    scratch[(t * zp.heads + h) * 2u] = m;
    scratch[(t * zp.heads + h) * 2u + 1u] = l;
  }
}
