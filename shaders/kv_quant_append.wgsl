// Quantized KV cache: quantize-on-flush and residual-ring append for one tensor (K or V) of one layer,
// run after the step's attention (layout in lib/kv_quant.wgsl). Positions [lo, hi) =
// [quantized_count(pos0), quantized_count(pos0 + T)) leave full precision this step; each comes from the
// step's fresh rows (p ≥ pos0) or the ring (p < pos0, or always when ring_source = 1). Entry points, dispatched in this order:
//   scales_token    one invocation per (flushed token, channel group)        → scales
//   scales_channel  one invocation per (flushed G-token block, channel)      → scales
//   pack_codes      one invocation per (flushed token, code word)            → codes (uses the stored f16 scales)
//   ring_append     one invocation per (fresh token, element), the last R fresh tokens → ring
// Bindings: 0 QuantParams, 1 AppendParams, 2 Step, 3 fresh f32 [T, E], 4 ring kvt [2, R, E],
// 5 codes u32, 6 scales u32. Dispatch: flat, split over x and y by `row_stride` invocations.
struct AppendParams { is_key: u32, invocations: u32, row_stride: u32, _p: u32 }
#include step

@group(0) @binding(0) var<uniform> qp: QuantParams;
@group(0) @binding(1) var<uniform> ap: AppendParams;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> fresh: array<f32>;
@group(0) @binding(4) var<storage, read_write> ring: array<kvt>;
@group(0) @binding(5) var<storage, read_write> codes: array<u32>;
@group(0) @binding(6) var<storage, read_write> scales: array<u32>;

#include f16
#include kv_quant

fn is_key() -> bool { return ap.is_key == 1u; }
fn ring_base() -> u32 { return select(qp.ring_slots * qp.row_elems, 0u, is_key()); }

// Full-precision element e of position p, from this step's rows or the ring.
fn source(p: u32, e: u32) -> f32 {
  if (p >= step.pos0 && qp.ring_source == 0u) { return fresh[(p - step.pos0) * qp.row_elems + e]; }
  return f32(ring[ring_base() + (p % qp.ring_slots) * qp.row_elems + e]);
}

fn invocation(gid: vec3u) -> u32 { return gid.x + gid.y * ap.row_stride; }

@compute @workgroup_size(64)
fn scales_token(@builtin(global_invocation_id) gid: vec3u) {
  let lo = quantized_count(step.pos0, is_key());
  let hi = quantized_count(step.pos0 + step.tokens, is_key());
  let i = invocation(gid);
  let p = lo + i / qp.groups_per_row;
  if (i >= ap.invocations || p >= hi) { return; }
  let g = i % qp.groups_per_row;
  var lo_v = 3.0e38;
  var hi_v = -3.0e38;
  for (var c = 0u; c < qp.channel_group; c++) {
    let x = source(p, g * qp.channel_group + c);
    lo_v = min(lo_v, x);
    hi_v = max(hi_v, x);
  }
  let base = select(qp.v_scale_offset, 0u, is_key());
  scales[base + p * qp.groups_per_row + g] = group_scale(lo_v, hi_v, select(qp.v_bits, qp.k_bits, is_key()));
}

@compute @workgroup_size(64)
fn scales_channel(@builtin(global_invocation_id) gid: vec3u) {
  let lo = quantized_count(step.pos0, true);
  let hi = quantized_count(step.pos0 + step.tokens, true);
  let i = invocation(gid);
  let block = lo / qp.key_block + i / qp.row_elems;
  if (i >= ap.invocations || block * qp.key_block >= hi) { return; }
  let e = i % qp.row_elems;
  var lo_v = 3.0e38;
  var hi_v = -3.0e38;
  for (var t = 0u; t < qp.key_block; t++) {
    let x = source(block * qp.key_block + t, e);
    lo_v = min(lo_v, x);
    hi_v = max(hi_v, x);
  }
  scales[block * qp.row_elems + e] = group_scale(lo_v, hi_v, qp.k_bits);
}

@compute @workgroup_size(64)
fn pack_codes(@builtin(global_invocation_id) gid: vec3u) {
  let key = is_key();
  let lo = quantized_count(step.pos0, key);
  let hi = quantized_count(step.pos0 + step.tokens, key);
  let words = select(qp.v_words, qp.k_words, key);
  let i = invocation(gid);
  let p = lo + i / words;
  if (i >= ap.invocations || p >= hi) { return; }
  let w = i % words;
  let bits = select(qp.v_bits, qp.k_bits, key);
  let per_word = 32u / bits;
  var word = 0u;
  for (var k = 0u; k < per_word; k++) {
    let e = w * per_word + k;
    if (e < qp.row_elems) { word |= quantize_value(source(p, e), scale_min(p, e, key), bits) << (k * bits); }
  }
  codes[p * row_words() + select(qp.k_words, 0u, key) + w] = word;
}

@compute @workgroup_size(64)
fn ring_append(@builtin(global_invocation_id) gid: vec3u) {
  let i = invocation(gid);
  if (i >= step.tokens * qp.row_elems) { return; }
  let p = step.pos0 + i / qp.row_elems;
  if (p + qp.residual < step.pos0 + step.tokens) { return; }
  ring[ring_base() + (p % qp.ring_slots) * qp.row_elems + i % qp.row_elems] = to_kvt(fresh[i]);
}
