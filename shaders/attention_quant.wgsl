// Attention over a quantized KV layer, read in place (layout in lib/kv_quant.wgsl): keys and values
// below quantized_count(pos0) are dequantized from packed codes and f16 (s, min) inside the dot product
// and the value sum (lib/kv_quant_rows.wgsl, a whole row at a time); older-than-this-step positions above
// it come from the full-precision ring; this step's own positions (≥ pos0) come from its fresh f32 rows.
// Each invocation owns a contiguous chunk of rows (lib/attention_rows.wgsl). The quantize-on-flush runs
// after this kernel.
// Bindings: 0 AttnParams, 1 Step, 2 q, 3 out, 4 QuantParams, 5 k_fresh, 6 v_fresh, 7 ring, 8 codes, 9 scales.
// Saliency entry points (eviction by saliency): lib/saliency_rows.wgsl, bindings 12-14.

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> qp: QuantParams;
@group(0) @binding(5) var<storage, read> k_fresh: array<f32>;
@group(0) @binding(6) var<storage, read> v_fresh: array<f32>;
@group(0) @binding(7) var<storage, read> ring: array<kvt>;
@group(0) @binding(8) var<storage, read> codes: array<u32>;
@group(0) @binding(9) var<storage, read> scales: array<u32>;

#include f16
#include kv_quant
#include attention_rows
#include kv_quant_rows

fn row_score(j: u32, kvh: u32) -> f32 {
  let e0 = kvh * p.head_dim;
  if (j < quantized_count(step.pos0, true)) { return quant_key_dot(j, e0); }
  var s = 0.0;
  if (j >= step.pos0) {
    let base = (j - step.pos0) * qp.row_elems + e0;
    for (var c = 0u; c < p.head_dim; c++) { s += q_row[c] * k_fresh[base + c]; }
  } else {
    let base = (j % qp.ring_slots) * qp.row_elems + e0;
    for (var c = 0u; c < p.head_dim; c++) { s += q_row[c] * f32(ring[base + c]); }
  }
  return s;
}

fn row_accumulate(j: u32, kvh: u32, w: f32) {
  let e0 = kvh * p.head_dim;
  if (j < quantized_count(step.pos0, false)) {
    quant_value_accumulate(j, e0, w);
  } else if (j >= step.pos0) {
    let base = (j - step.pos0) * qp.row_elems + e0;
    for (var c = 0u; c < p.head_dim; c++) { acc[c] += w * v_fresh[base + c]; }
  } else {
    let base = (qp.ring_slots + j % qp.ring_slots) * qp.row_elems + e0;
    for (var c = 0u; c < p.head_dim; c++) { acc[c] += w * f32(ring[base + c]); }
  }
}

fn row_stats(t: u32, h: u32, m: f32, l: f32, lid: u32) {}

#include saliency_rows
