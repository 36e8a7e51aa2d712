// Library: causal multi-head attention with online softmax in which each invocation owns whole key rows,
// used by every cache layout: a row's scales, code words and lookups (packed codes with per-row or
// per-block scales, merged pairs with a per-row norm and slot lookup, or plain f16/f32 rows) are loaded once
// per row, and the only workgroup barriers are in the final reduction.
// The including file declares the bindings `p: AttnParams` (uniform), `step: Step` (uniform), `q` and
// `out` (f32 [T, heads, head_dim]) and defines how its layout is read in place:
//   fn row_score(j: u32, kvh: u32) -> f32          q_row · K[j, kvh, :]   (unscaled)
//   fn row_accumulate(j: u32, kvh: u32, w: f32)    acc[c] += w · V[j, kvh, c] for c < head_dim
//   fn row_stats(t: u32, h: u32, m: f32, l: f32, lid: u32)   receives the row's softmax max m and sum
//                                                  Σ exp(s − m) (every invocation calls it; may be empty)
// Each invocation visits a contiguous chunk of positions in increasing order, so an including file may
// keep per-invocation caches in `var<private>` (e.g. the scales of the current key block).
// One workgroup per (head, query token); query t at absolute position pos0 + t sees keys 0 ..= pos0 + t.
// Scores are taken ROW_BATCH rows at a time so the running accumulator is rescaled at most once per batch.
// Finally the per-invocation (max, sum, acc) are combined through workgroup memory, REDUCE_CHANNELS
// channels at a time. GQA: head h reads KV head h / (heads / kv_heads). Dispatch: (heads, T).
// The entry point main_serial (below) is the barrier-free schedule for CPU adapters.
const WG: u32 = 64u;
const MAX_D: u32 = 256u;
const ROW_BATCH: u32 = 8u;
const REDUCE_CHANNELS: u32 = 32u;
#include reduce

#include attention_common

var<workgroup> partial: array<f32, WG * REDUCE_CHANNELS>; // [invocation, channel of the current chunk]
var<private> acc: array<f32, MAX_D>;                       // this invocation's Σ w · V[j] over its rows

// Online softmax over rows [j_begin, j_end) into this invocation's acc; returns (max score, Σ exp(s − max)).
fn visit_rows(j_begin: u32, j_end: u32, kvh: u32) -> vec2f {
  let d = p.head_dim;
  for (var c = 0u; c < d; c++) { acc[c] = 0.0; }
  var m = -1e30;
  var l = 0.0;
  var scores: array<f32, ROW_BATCH>;
  for (var j0 = j_begin; j0 < j_end; j0 += ROW_BATCH) {
    let n = min(ROW_BATCH, j_end - j0);
    var batch_max = m;
    for (var i = 0u; i < n; i++) {
      scores[i] = row_score(j0 + i, kvh) * p.scale;
      batch_max = max(batch_max, scores[i]);
    }
    if (batch_max > m) {
      let alpha = exp(m - batch_max);
      l *= alpha;
      for (var c = 0u; c < d; c++) { acc[c] *= alpha; }
      m = batch_max;
    }
    for (var i = 0u; i < n; i++) {
      let w = exp(scores[i] - m);
      l += w;
      row_accumulate(j0 + i, kvh, w);
    }
  }
  return vec2f(m, l);
}

// main_serial: the same attention with one invocation per query (t, h) that visits every key itself, 64
// queries per workgroup, so there is no barrier at all. For CPU adapters (SwiftShader, lavapipe), where a
// barrier switches between every invocation of the workgroup, and neighbouring invocations fill the SIMD
// lanes. Used for prefill chunks there. Dispatch: ceil(T · heads / 64) workgroups of 64.
@compute @workgroup_size(WG)
fn main_serial(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.tokens * p.heads) { return; }
  let h = i % p.heads;
  let t = i / p.heads;
  let qbase = load_query(h, t);
  let ml = visit_rows(0u, step.pos0 + t + 1u, kv_head_of(h));
  row_stats(t, h, ml.x, ml.y, 0u);
  for (var c = 0u; c < p.head_dim; c++) { out[qbase + c] = acc[c] / ml.y; }
}

// main_split: split-K (flash-decoding) for decode steps, with no barrier and no workgroup memory.
// Invocation (t, h, s) takes keys [s·chunk, (s+1)·chunk), chunk = ceil(kv_end / SPLITS), and writes its
// (max m, Σ exp(s − m), Σ exp(s − m)·V) to split_out: f32 [T, heads, SPLITS, 2 + head_dim];
// shaders/attention_combine.wgsl merges the SPLITS partials into out. No row_stats (zip does not split).
// Dispatch: ceil(T · heads · SPLITS / 64) workgroups of 64.
override SPLITS: u32 = 1u;
@group(0) @binding(15) var<storage, read_write> split_out: array<f32>;

@compute @workgroup_size(WG)
fn main_split(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.tokens * p.heads * SPLITS) { return; }
  let s = i % SPLITS;
  let h = (i / SPLITS) % p.heads;
  let t = i / (SPLITS * p.heads);
  load_query(h, t);
  let kv_end = step.pos0 + t + 1u;
  let chunk = (kv_end + SPLITS - 1u) / SPLITS;
  let j_begin = min(s * chunk, kv_end);
  let ml = visit_rows(j_begin, min(j_begin + chunk, kv_end), kv_head_of(h));
  let base = i * (2u + p.head_dim);
  split_out[base] = ml.x;
  split_out[base + 1u] = ml.y;
  for (var c = 0u; c < p.head_dim; c++) { split_out[base + 2u + c] = acc[c]; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x;
  let t = wg.y;
  let kvh = kv_head_of(h);
  let d = p.head_dim;
  let qbase = load_query(h, t);

  let kv_end = step.pos0 + t + 1u;
  let chunk = (kv_end + WG - 1u) / WG;
  let j_begin = min(lid * chunk, kv_end);
  let j_end = min(j_begin + chunk, kv_end);
  let ml = visit_rows(j_begin, j_end, kvh);
  let m = ml.x;
  let l = ml.y;

  // Combine: out = Σ_i f_i · acc_i / Σ_i f_i · l_i with f_i = exp(m_i − max_i m_i).
  let global_max = workgroup_max(m, lid);
  let f = exp(m - global_max);
  let total = workgroup_sum(l * f, lid);
  row_stats(t, h, global_max, total, lid);
  for (var c0 = 0u; c0 < d; c0 += REDUCE_CHANNELS) {
    for (var i = 0u; i < REDUCE_CHANNELS; i++) {
      var x = 0.0;
      if (c0 + i < d) { x = acc[c0 + i] * f; }
      partial[lid * REDUCE_CHANNELS + i] = x;
    }
    workgroupBarrier();
    if (lid < REDUCE_CHANNELS && c0 + lid < d) {
      var s = 0.0;
      for (var k = 0u; k < WG; k++) { s += partial[k * REDUCE_CHANNELS + lid]; }
      out[qbase + c0 + lid] = s / total;
    }
    workgroupBarrier();
  }
}
