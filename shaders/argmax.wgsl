// Greedy sampling without reading logits back: out[0] = argmax_i x[row_offset * n + i] (first index on ties),
// or NON_FINITE (0xffffffff, never a token id) when any of the row's logits is NaN or ±Inf, so the caller
// can stop instead of feeding a meaningless id back (NonFiniteLogitsError).
// Bindings: 0 Params, 1 x: f32 [rows, n], 2 out: u32 [1].
// main: 1 workgroup of 256 invocations; each scans a strided slice, then a shared-memory tree.
// main_serial: one invocation scans the whole row, with no barrier (CPU adapters, where a barrier costs a
// switch between every invocation and a vocabulary scan takes microseconds). Dispatch: 1 workgroup.
struct Params { n: u32, row_offset: u32, _p0: u32, _p1: u32 }
const WG: u32 = 256u;
#include finite

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;
var<workgroup> any_non_finite: atomic<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let base = p.row_offset * p.n;
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  var bad = false;
  for (var i = lid; i < p.n; i += WG) {
    let v = x[base + i];
    bad = bad || non_finite(v);
    if (v > bv) { bv = v; bi = i; }
  }
  if (bad) { atomicOr(&any_non_finite, 1u); }
  best_value[lid] = bv;
  best_index[lid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let ov = best_value[lid + s];
      let oi = best_index[lid + s];
      if (ov > best_value[lid] || (ov == best_value[lid] && oi < best_index[lid])) {
        best_value[lid] = ov;
        best_index[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) { out[0] = select(best_index[0], NON_FINITE, atomicLoad(&any_non_finite) != 0u); }
}

@compute @workgroup_size(1)
fn main_serial() {
  let base = p.row_offset * p.n;
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  var bad = false;
  for (var i = 0u; i < p.n; i++) {
    let v = x[base + i];
    bad = bad || non_finite(v);
    if (v > bv) { bv = v; bi = i; }
  }
  out[0] = select(bi, NON_FINITE, bad);
}
