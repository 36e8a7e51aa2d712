// Decode GEMV (steps of 1–2 tokens) with its neighbours fused in, over up to three weight segments that are
// laid side by side in the output (e.g. q, k and v projections of one normed input, in one dispatch):
//   y[t, col_start + r] = epilogue( s_t · Σ_k x[x_row + t, k] · g[k] · W_seg(r)[r', k] )
// where row r of the output is row r' of segment seg(r) (segments 0, 1, 2 of rows0, rows1, rows2 rows),
//   s_t = 1 / sqrt(mean_k x[x_row + t, k]² + eps) and g = the RMSNorm gain when HAS_NORM (else s = g = 1);
//   epilogue: + bias[col] (HAS_BIAS); + y[t, col] (RESIDUAL, y += W·x); with SWIGLU the output has rows0
//   rows and is silu(a) · b with a from segment 0 and b from segment 1, both row r (gate and up).
// x: f32 [*, k] as vec4; W segments: wt [rows_s, k] as vec4 (k % 4 == 0), or with WQ ggml blocks of one
// type (WQ_<TYPE>) as u32 words, dequantized in the loop (lib/ggml_blocks.wgsl; k % block elements == 0);
// gain: wt [k] as vec4; bias: wt [n_total]; y: f32 [T, n_total]. Two schedules, the same arithmetic per row:
//   gemv_rows: one invocation per output row, no shared memory and no barrier. For CPU adapters
//              (SwiftShader, lavapipe), which run a workgroup's invocations as a few SIMD threads: there a
//              barrier costs a context switch per invocation, and a workgroup's start a fixed tens of µs.
//              Quantized rows are read 32 elements at a time, their scales decoded once.
//              Dispatch: (min(groups, 65535), T, ceil(groups / 65535)), groups = ceil(rows / 64).
//   gemv_coop: ROWS rows per workgroup; its 64 invocations stride over k in vec4s (coalesced loads), then
//              the partial sums are reduced with subgroupAdd and one slot per subgroup taken from a
//              workgroup atomic (no assumption about how lanes map to invocations), or with a shared-memory
//              tree without subgroups. Dispatch: as above with groups = ceil(rows / ROWS).
// Bindings: 0 Params, 1 x, 2 w0, 3 bias, 4 y, 5 w1, 6 w2, 7 gain (unused ones are bound to w0).
struct Params {
  tokens: u32, k: u32, rows0: u32, rows1: u32,
  rows2: u32, col_start: u32, n_total: u32, x_row: u32,
  eps: f32, _p0: u32, _p1: u32, _p2: u32,
}

override HAS_BIAS: bool = false;
override HAS_NORM: bool = false;
override RESIDUAL: bool = false;
override SWIGLU: bool = false;
override ROWS: u32 = 4u;
// Invocations (= rows) per workgroup of gemv_rows.
override ROWS_WG: u32 = 64u;
// With WQ: weight buffers read (1–3; 2 for SWIGLU). Each is a copy of the block decoder, which CPU adapters
// take seconds to compile, so the copies for buffers a pipeline never reads are compiled out.
override SEGMENTS: u32 = 3u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<wt>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
#if WQ
@group(0) @binding(2) var<storage, read> w0: array<u32>;
@group(0) @binding(5) var<storage, read> w1: array<u32>;
@group(0) @binding(6) var<storage, read> w2: array<u32>;
#include ggml_blocks
#else
@group(0) @binding(2) var<storage, read> w0: array<vec4<wt>>;
@group(0) @binding(5) var<storage, read> w1: array<vec4<wt>>;
@group(0) @binding(6) var<storage, read> w2: array<vec4<wt>>;
#endif
@group(0) @binding(7) var<storage, read> gain: array<vec4<wt>>;

const WG: u32 = 64u;
const MAX_ROWS: u32 = 8u;

// Output rows of one token.
fn out_rows() -> u32 {
  if (SWIGLU) { return p.rows0; }
  return p.rows0 + p.rows1 + p.rows2;
}

// Element k4 (a vec4 index) of weight row `row` of segment `seg`.
fn w_at(seg: u32, row: u32, k4: u32) -> vec4f {
#if WQ
  if (SEGMENTS == 1u || seg == 0u) { return wq_vec4(&w0, row, p.k, k4); }
  if (SEGMENTS == 2u || seg == 1u) { return wq_vec4(&w1, row, p.k, k4); }
  return wq_vec4(&w2, row, p.k, k4);
#else
  let i = row * (p.k / 4u) + k4;
  if (seg == 0u) { return vec4f(w0[i]); }
  if (seg == 1u) { return vec4f(w1[i]); }
  return vec4f(w2[i]);
#endif
}

// The segment and its row of output row r (SWIGLU rows read segment 0 and 1 at row r).
fn locate(r: u32) -> vec2u {
  if (SWIGLU || r < p.rows0) { return vec2u(0u, r); }
  if (r < p.rows0 + p.rows1) { return vec2u(1u, r - p.rows0); }
  return vec2u(2u, r - p.rows0 - p.rows1);
}

// x[x_row + t, k4] as read (its square feeds the norm).
fn x_at(t: u32, k4: u32) -> vec4f {
  return x[(p.x_row + t) * (p.k / 4u) + k4];
}

// The norm gain of k4 (1 without HAS_NORM): x_at · gain is what multiplies the weights.
fn gain_at(k4: u32) -> vec4f {
  if (HAS_NORM) { return vec4f(gain[k4]); }
  return vec4f(1.0);
}

// Store output row r of token t from its dot product(s) `a` (and `b` for SWIGLU) and Σ x².
fn store(t: u32, r: u32, a: f32, b: f32, sq: f32) {
  var s = 1.0;
  if (HAS_NORM) { s = inverseSqrt(sq / f32(p.k) + p.eps); }
  let col = p.col_start + r;
  let idx = t * p.n_total + col;
  var v = a * s;
  if (SWIGLU) {
    let up = b * s;
    v = v / (1.0 + exp(-v)) * up;
  }
  if (HAS_BIAS) { v += f32(bias[col]); }
  if (RESIDUAL) { v += y[idx]; }
  y[idx] = v;
}

fn group_index(wg: vec3u, nwg: vec3u) -> u32 {
  return wg.x + wg.z * nwg.x;
}

#if WQ
// The 32 weights of group g of row `row` of segment `seg` (as w_at).
fn seg_group32(seg: u32, row: u32, g: u32) -> array<vec4f, 8> {
  if (SEGMENTS == 1u || seg == 0u) { return wq_group32(&w0, row, p.k, g); }
  if (SEGMENTS == 2u || seg == 1u) { return wq_group32(&w1, row, p.k, g); }
  return wq_group32(&w2, row, p.k, g);
}

// (Σ_k x(t, k) · gain[k] · w[k] over weight row `at` = (segment, row); the same over row at.y of segment 1
// with SWIGLU; Σ_k x²): one loop over 32-element groups, the segment chosen once per group, x read once.
fn row_dot_q(at: vec2u, t: u32) -> vec3f {
  var a = vec4f(0.0);
  var b = vec4f(0.0);
  var sq = 0.0;
  for (var g = 0u; g < p.k / 32u; g++) {
    let wa = seg_group32(at.x, at.y, g);
    var wb: array<vec4f, 8>;
    if (SWIGLU) { wb = seg_group32(1u, at.y, g); }
    for (var i = 0u; i < 8u; i++) {
      let k4 = g * 8u + i;
      let raw = x_at(t, k4);
      if (HAS_NORM) { sq += dot(raw, raw); }
      let xv = raw * gain_at(k4);
      a += xv * wa[i];
      if (SWIGLU) { b += xv * wb[i]; }
    }
  }
  return vec3f(a.x + a.y + a.z + a.w, b.x + b.y + b.z + b.w, sq);
}
#else
// Σ_k x(t, k) · gain[k] · w[row, k] over one weight row, and Σ_k x² (for the norm); x is read once per vec4.
fn row_dot(w: ptr<storage, array<vec4<wt>>, read>, row: u32, t: u32) -> vec2f {
  let k4s = p.k / 4u;
  let base = row * k4s;
  var a = vec4f(0.0);
  var sq = 0.0;
  for (var k4 = 0u; k4 < k4s; k4++) {
    let xv = x_at(t, k4);
    if (HAS_NORM) { sq += dot(xv, xv); }
    a += xv * gain_at(k4) * vec4f((*w)[base + k4]);
  }
  return vec2f(a.x + a.y + a.z + a.w, sq);
}
#endif

@compute @workgroup_size(ROWS_WG)
fn gemv_rows(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = group_index(wg, nwg) * ROWS_WG + lid;
  let t = wg.y;
  if (r >= out_rows()) { return; }
  let at = locate(r);
#if WQ
  let d = row_dot_q(at, t);
  store(t, r, d.x, d.y, d.z);
#else
  // The segment is chosen once per row, outside the k loop (a branch per element costs CPU adapters ~50%).
  var a: vec2f;
  var b = vec2f(0.0);
  if (at.x == 0u) {
    a = row_dot(&w0, at.y, t);
    if (SWIGLU) { b = row_dot(&w1, at.y, t); }
  } else if (at.x == 1u) {
    a = row_dot(&w1, at.y, t);
  } else {
    a = row_dot(&w2, at.y, t);
  }
  store(t, r, a.x, b.x, a.y);
#endif
}

// ---- gemv_coop ------------------------------------------------------------------------------------
// Per invocation: 2 · MAX_ROWS partial dots (a of each row, then b for SWIGLU) and Σ x².
const SLOTS: u32 = 2u * MAX_ROWS + 1u;
var<workgroup> partial: array<array<f32, SLOTS>, WG>;
var<workgroup> subgroup_slots: atomic<u32>;

@compute @workgroup_size(WG)
fn gemv_coop(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sg_lane: u32,
#endif
) {
  let r0 = group_index(wg, nwg) * ROWS;
  let t = wg.y;
  let n = out_rows();
  let k4s = p.k / 4u;
  var acc: array<f32, SLOTS>;
  for (var k4 = lid; k4 < k4s; k4 += WG) {
    let raw = x_at(t, k4);
    if (HAS_NORM) { acc[2u * MAX_ROWS] += dot(raw, raw); }
    let xv = raw * gain_at(k4);
    for (var i = 0u; i < ROWS; i++) {
      // Rows past the end read row n - 1 again and are never stored.
      let at = locate(min(r0 + i, n - 1u));
      acc[i] += dot(xv, w_at(at.x, at.y, k4));
      if (SWIGLU) { acc[MAX_ROWS + i] += dot(xv, w_at(1u, at.y, k4)); }
    }
  }
#if SUBGROUPS
  if (lid == 0u) { atomicStore(&subgroup_slots, 0u); }
  workgroupBarrier();
  var sums: array<f32, SLOTS>;
  for (var i = 0u; i < SLOTS; i++) { sums[i] = subgroupAdd(acc[i]); }
  if (sg_lane == 0u) {
    let slot = atomicAdd(&subgroup_slots, 1u);
    for (var i = 0u; i < SLOTS; i++) { partial[slot][i] = sums[i]; }
  }
  workgroupBarrier();
  let count = atomicLoad(&subgroup_slots);
  if (lid < ROWS && r0 + lid < n) {
    var a = 0.0;
    var b = 0.0;
    var sq = 0.0;
    for (var s = 0u; s < count; s++) {
      a += partial[s][lid];
      b += partial[s][MAX_ROWS + lid];
      sq += partial[s][2u * MAX_ROWS];
    }
    store(t, r0 + lid, a, b, sq);
  }
#else
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      for (var i = 0u; i < SLOTS; i++) { partial[lid][i] += partial[lid + s][i]; }
    }
    workgroupBarrier();
  }
  if (lid < ROWS && r0 + lid < n) {
    store(t, r0 + lid, partial[0][lid], partial[0][MAX_ROWS + lid], partial[0][2u * MAX_ROWS]);
  }
#endif
}
