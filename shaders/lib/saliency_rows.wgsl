// Library: per-slot attention saliency (H2O / SnapKV) as two more entry points of an attention kernel file
// that includes lib/attention_rows.wgsl. They score keys with that file's row_score, so every layout is read
// in place exactly as its attention reads it. Run after the step's attention and before its cache append
// passes (row_score may still read this step's fresh rows). Probe queries: the step's last `probes` queries
// (SnapKV's observation window; the one query of a decode step).
//   saliency_stats       one invocation per (probe, head h): softmax max m and sum l of the probe's scores over
//                        keys 0 ..= pos0 + t → stats [probe, h, 2]
//   saliency_accumulate  one invocation per (slot j < pos0 + T, KV head g): Σ over the probes that see j
//                        (j <= pos0 + t) and the heads h of g of exp(score − m) / l → sal[j, g]; with
//                        count_queries (the first layer), sal[j, kv_heads] += the queries that saw j, and the
//                        rows of this step's own slots start from zero.
// One invocation owns one (slot, KV head), so row_score's per-invocation caches (KIVI key-block scales) stay valid.
// sal: f32 [slots, kv_heads + 1] (weight per KV head summed over layers | query count), compacted with the
// cache's rows on eviction; normalized saliency = Σ_g weight / count (src/kv/saliency.ts).
// Bindings: 12 SaliencyParams, 13 stats f32 [probes, heads, 2], 14 sal.
// Dispatch: ceil(probes · heads / 64), then ceil((pos0 + T) · kv_heads / 64) workgroups, split over x and y by `row_stride` invocations.
struct SaliencyParams { probes: u32, count_queries: u32, row_stride: u32, slots: u32 }

@group(0) @binding(12) var<uniform> sp: SaliencyParams;
@group(0) @binding(13) var<storage, read_write> sal_stats: array<f32>;
@group(0) @binding(14) var<storage, read_write> sal: array<f32>;

fn probe_count() -> u32 { return min(sp.probes, p.tokens); }

@compute @workgroup_size(64)
fn saliency_stats(@builtin(global_invocation_id) gid: vec3u) {
  let n = probe_count();
  let i = gid.x + gid.y * sp.row_stride;
  if (i >= n * p.heads) { return; }
  let h = i % p.heads;
  let t = p.tokens - n + i / p.heads;
  load_query(h, t);
  let kvh = kv_head_of(h);
  var m = -1e30;
  var l = 0.0;
  for (var j = 0u; j <= step.pos0 + t; j++) {
    let s = row_score(j, kvh) * p.scale;
    if (s > m) {
      l *= exp(m - s);
      m = s;
    }
    l += exp(s - m);
  }
  sal_stats[i * 2u] = m;
  sal_stats[i * 2u + 1u] = l;
}

@compute @workgroup_size(64)
fn saliency_accumulate(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * sp.row_stride;
  if (i >= min(step.pos0 + p.tokens, sp.slots) * p.kv_heads) { return; }
  let j = i / p.kv_heads;
  let g = i % p.kv_heads;
  let n = probe_count();
  let group = p.heads / p.kv_heads;
  var sum = 0.0;
  var seen = 0u;
  for (var k = 0u; k < n; k++) {
    let t = p.tokens - n + k;
    if (j > step.pos0 + t) { continue; }
    for (var hh = 0u; hh < group; hh++) {
      let h = g * group + hh;
      load_query(h, t);
      let stats = (k * p.heads + h) * 2u;
      sum += exp(row_score(j, g) * p.scale - sal_stats[stats]) / sal_stats[stats + 1u];
    }
    seen += p.heads;
  }
  let row = j * (p.kv_heads + 1u);
  // The first layer starts the row of a slot appended by this step (whatever an evicted slot left there).
  let fresh = sp.count_queries == 1u && j >= step.pos0;
  sal[row + g] = select(sal[row + g], 0.0, fresh) + sum;
  if (sp.count_queries == 1u && g == 0u) { sal[row + p.kv_heads] = select(sal[row + p.kv_heads], 0.0, fresh) + f32(seen); }
}
