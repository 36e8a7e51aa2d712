// Linear layer y = x · Wᵀ (+ b) for prefill chunks (decode steps use gemv.wgsl), HF Linear layout:
// x: f32 [T, K], W: wt [rows, K] (one part of a weight that may be split across buffers by rows, or one of
// several weights side by side), or with WQ ggml blocks of one type (WQ_<TYPE>) as u32 words, dequantized
// while the w tile is loaded (lib/ggml_blocks.wgsl; K % block elements == 0, so a K step never straddles
// the row's end); y: f32 [T, n_total] written at columns row_start + r; with RESIDUAL the product is added
// to y (y += x · Wᵀ).
//   tiled: 32×32 output tiles, 8×8 invocations with 4×4 outputs each, K in steps of 16 through shared
//          memory. Dispatch: (ceil(rows / 32), ceil(T / 32)).
// Bindings: 0 Params, 1 x, 2 w, 3 bias: wt [n_total] (ignored unless HAS_BIAS), 4 y.
struct Params { tokens: u32, k: u32, rows: u32, row_start: u32, n_total: u32, _p0: u32, _p1: u32, _p2: u32 }

override HAS_BIAS: bool = false;
override RESIDUAL: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if WQ
@group(0) @binding(2) var<storage, read> w: array<u32>;
#include ggml_blocks
#else
@group(0) @binding(2) var<storage, read> w: array<wt>;
#endif
@group(0) @binding(3) var<storage, read> bias: array<wt>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn store(t: u32, r: u32, v: f32) {
  let col = p.row_start + r;
  var out = v;
  if (HAS_BIAS) { out += f32(bias[col]); }
  let idx = t * p.n_total + col;
  if (RESIDUAL) { out += y[idx]; }
  y[idx] = out;
}

// ---- tiled ------------------------------------------------------------------------------------
const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 16u;
var<workgroup> x_tile: array<f32, TM * TK>;
var<workgroup> w_tile: array<f32, TN * TK>;

#if WQ
// w_tile = rows n0 .. n0 + TN of w at k0 .. k0 + TK, one vec4 per invocation and pass (zero past the rows).
fn load_w_tile(n0: u32, k0: u32, li: u32) {
  for (var i = li; i < TN * TK / 4u; i += 64u) {
    let r = i / (TK / 4u);
    let c = i % (TK / 4u);
    var v = vec4f(0.0);
    if (n0 + r < p.rows) { v = wq_vec4(&w, n0 + r, p.k, k0 / 4u + c); }
    let o = r * TK + c * 4u;
    w_tile[o] = v.x;
    w_tile[o + 1u] = v.y;
    w_tile[o + 2u] = v.z;
    w_tile[o + 3u] = v.w;
  }
}
#endif

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
#if !WQ
      var wv = 0.0;
      if (n0 + r < p.rows && k < p.k) { wv = f32(w[(n0 + r) * p.k + k]); }
      w_tile[i] = wv;
#endif
    }
#if WQ
    load_w_tile(n0, k0, li);
#endif
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
