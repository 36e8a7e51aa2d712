// Full-precision KV cache layout: K and V stored as kvt (f16 when the adapter has shader-f16, else f32),
// row-major [capacity, kv_heads, head_dim] per layer, one row per absolute position.
// Appending is kv_full_append.wgsl.
// This file: attention over rows 0 ..= pos0 + t, read in place a row at a time (lib/attention_rows.wgsl).
// Bindings: 0 AttnParams, 1 Step, 2 q, 3 k_cache, 4 v_cache, 5 out.
// Saliency entry points (eviction by saliency): lib/saliency_rows.wgsl, bindings 12-14.

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<kvt>;
@group(0) @binding(4) var<storage, read> v_cache: array<kvt>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

#include attention_rows

fn row_score(j: u32, kvh: u32) -> f32 {
  let base = (j * p.kv_heads + kvh) * p.head_dim;
  var s = 0.0;
  for (var c = 0u; c < p.head_dim; c++) { s += q_row[c] * f32(k_cache[base + c]); }
  return s;
}

fn row_accumulate(j: u32, kvh: u32, w: f32) {
  let base = (j * p.kv_heads + kvh) * p.head_dim;
  for (var c = 0u; c < p.head_dim; c++) { acc[c] += w * f32(v_cache[base + c]); }
}

fn row_stats(t: u32, h: u32, m: f32, l: f32, lid: u32) {}

#include saliency_rows
