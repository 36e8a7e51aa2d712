// Linear layer y = x · Wᵀ (+ b), HF Linear layout: x: f32 [T, K], W: wt [rows, K] (one part of a weight
// that may be split across buffers by rows), y: f32 [T, n_total] written at columns row_start + r.
//   gemv:  decode path (T small). A workgroup computes 4 output rows of one token; invocations stride
//          over K in vec4s and the 4 partial sums are reduced with subgroupAdd (SUBGROUPS) or shared memory.
//          Dispatch: (min(row_blocks, 65535), T, ceil(row_blocks / 65535)), row_blocks = ceil(rows / 4).
//          Needs K % 4 == 0.
//   tiled: prefill path. 32×32 output tiles, 8×8 invocations with 4×4 outputs each, K in steps of 16
//          through shared memory. Dispatch: (ceil(rows / 32), ceil(T / 32)).
// Bindings: 0 Params, 1 x, 2 w, 3 bias: wt [n_total] (ignored unless HAS_BIAS), 4 y.
struct Params { tokens: u32, k: u32, rows: u32, row_start: u32, n_total: u32, _p0: u32, _p1: u32, _p2: u32 }

override HAS_BIAS: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<wt>;
@group(0) @binding(3) var<storage, read> bias: array<wt>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn store(t: u32, r: u32, v: f32) {
  let col = p.row_start + r;
  var out = v;
  if (HAS_BIAS) { out += f32(bias[col]); }
  y[t * p.n_total + col] = out;
}

// ---- gemv -------------------------------------------------------------------------------------
const GEMV_WG: u32 = 64u;
var<workgroup> gemv_partial: array<vec4f, GEMV_WG>;

fn load_w4(index: u32) -> vec4f {
  return vec4f(f32(w[index]), f32(w[index + 1u]), f32(w[index + 2u]), f32(w[index + 3u]));
}

@compute @workgroup_size(GEMV_WG)
fn gemv(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
  @builtin(subgroup_size) sg_size: u32,
  @builtin(subgroup_invocation_id) sg_lane: u32,
#endif
) {
  let r0 = (wg.x + wg.z * nwg.x) * 4u;
  let t = wg.y;
  let xbase = t * p.k;
  // Rows past the end read row r0 again and are never stored.
  let rows = vec4u(r0, min(r0 + 1u, p.rows - 1u), min(r0 + 2u, p.rows - 1u), min(r0 + 3u, p.rows - 1u));
  var acc = vec4f(0.0);
  for (var k = lid * 4u; k < p.k; k += GEMV_WG * 4u) {
    let xv = vec4f(x[xbase + k], x[xbase + k + 1u], x[xbase + k + 2u], x[xbase + k + 3u]);
    acc += vec4f(
      dot(xv, load_w4(rows.x * p.k + k)),
      dot(xv, load_w4(rows.y * p.k + k)),
      dot(xv, load_w4(rows.z * p.k + k)),
      dot(xv, load_w4(rows.w * p.k + k)),
    );
  }
#if SUBGROUPS
  // Subgroups are assumed to be laid out linearly over local_invocation_index, as on every known driver.
  let sg_sum = subgroupAdd(acc);
  if (sg_lane == 0u) { gemv_partial[lid / sg_size] = sg_sum; }
  workgroupBarrier();
  if (lid == 0u) {
    var total = vec4f(0.0);
    for (var i = 0u; i < max(1u, GEMV_WG / sg_size); i++) { total += gemv_partial[i]; }
    gemv_partial[0] = total;
  }
  workgroupBarrier();
#else
  gemv_partial[lid] = acc;
  workgroupBarrier();
  for (var s = GEMV_WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { gemv_partial[lid] += gemv_partial[lid + s]; }
    workgroupBarrier();
  }
#endif
  if (lid < 4u && r0 + lid < p.rows) {
    store(t, r0 + lid, gemv_partial[0][lid]);
  }
}

// ---- tiled ------------------------------------------------------------------------------------
const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 16u;
var<workgroup> x_tile: array<f32, TM * TK>;
var<workgroup> w_tile: array<f32, TN * TK>;

@compute @workgroup_size(8, 8)
fn tiled(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let n0 = wg.x * TN;
  let m0 = wg.y * TM;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.k; k0 += TK) {
    for (var i = li; i < TM * TK; i += 64u) {
      let r = i / TK;
      let k = k0 + i % TK;
      var xv = 0.0;
      if (m0 + r < p.tokens && k < p.k) { xv = x[(m0 + r) * p.k + k]; }
      x_tile[i] = xv;
      var wv = 0.0;
      if (n0 + r < p.rows && k < p.k) { wv = f32(w[(n0 + r) * p.k + k]); }
      w_tile[i] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = x_tile[(lid.y * 4u + i) * TK + kk];
        b[i] = w_tile[(lid.x * 4u + i) * TK + kk];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (m < p.tokens && n < p.rows) { store(m, n, acc[i * 4u + j]); }
    }
  }
}
