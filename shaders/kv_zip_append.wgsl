// `zip` KV layer, after the step's attention (layout in lib/zip_layout.wgsl, design in src/kv/zip-format.ts):
// score the not-yet-quantized tokens with this step's probe queries, then freeze every R block completed by
// this step (positions [Q(pos0), Q(pos0 + T))): pick its salient tokens per KV head, write key and value
// scales and the mixed-precision codes; finally move the fresh rows that stay in full precision into the
// ring, with their scores. Flushed rows come from the ring (p < pos0) or the step's fresh rows (p ≥ pos0).
// Entry points, dispatched in this order (flat 1-D, split over x and y by `row_stride` invocations):
//   probe_scores          (KV head, token in [Q(pos0), pos0 + T))   → saliency (ring tokens), scratch (fresh)
//   select_salient        (flushed block, KV head, mask word)       → meta bitmask
//   key_scales            (flushed block, KV head, key group, dim)  → meta key (s, min)
//   value_channel_scales  (flushed block, channel)                  → meta (c, 1/c)
//   value_token_scales    (flushed token)                           → meta value (lo, hi)
//   pack_codes            (flushed block, KV head, code word), for tensor ap.tensor → codes
//   ring_append           (fresh token, element)                    → ring, saliency
// Bindings: 0 ZipParams, 1 AppendParams, 2 Step, 3 q f32 [T, H, d], 4 k_fresh, 5 v_fresh f32 [T, E],
//   6 ring kvt [2, R, E], 7 codes u32, 8 block_meta u32, 9 saliency f32 [acc Hk·R | count R],
//   10 scratch f32 [row stats maxStep·H·2 | fresh acc Hk·maxStep | fresh count maxStep].
struct AppendParams { tensor: u32, invocations: u32, row_stride: u32, _p: u32 }
#include step

@group(0) @binding(0) var<uniform> zp: ZipParams;
@group(0) @binding(1) var<uniform> ap: AppendParams;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> k_fresh: array<f32>;
@group(0) @binding(5) var<storage, read> v_fresh: array<f32>;
@group(0) @binding(6) var<storage, read_write> ring: array<kvt>;
@group(0) @binding(7) var<storage, read_write> codes: array<u32>;
@group(0) @binding(8) var<storage, read_write> block_meta: array<u32>;
@group(0) @binding(9) var<storage, read_write> saliency: array<f32>;
@group(0) @binding(10) var<storage, read_write> scratch: array<f32>;

#include f16
#include zip_layout

fn invocation(gid: vec3u) -> u32 { return gid.x + gid.y * ap.row_stride; }

// Full-precision element e of position p of tensor 0 (K) or 1 (V), from this step's rows or the ring.
fn source(tensor: u32, p: u32, e: u32) -> f32 {
  if (p >= step.pos0) {
    let i = (p - step.pos0) * zp.row_elems + e;
    return select(k_fresh[i], v_fresh[i], tensor == 1u);
  }
  return f32(ring[(tensor * zp.residual + p % zp.residual) * zp.row_elems + e]);
}

fn fresh_acc_offset() -> u32 { return zp.max_step * zp.heads * 2u; }
fn fresh_count_offset() -> u32 { return fresh_acc_offset() + zp.kv_heads * zp.max_step; }

// (accumulated probability, probe count ≥ 1) of position p for KV head g.
fn score(p: u32, g: u32) -> vec2f {
  if (p >= step.pos0) {
    let t = p - step.pos0;
    return vec2f(scratch[fresh_acc_offset() + g * zp.max_step + t], max(scratch[fresh_count_offset() + t], 1.0));
  }
  let slot = p % zp.residual;
  return vec2f(saliency[g * zp.residual + slot], max(saliency[zp.kv_heads * zp.residual + slot], 1.0));
}

// The flushed block of index `i` within this step, or none (0xffffffff) when fewer blocks completed.
fn flushed_block(i: u32) -> u32 {
  let block = zip_quantized_count(step.pos0) / zp.residual + i;
  return select(0xffffffffu, block, (block + 1u) * zp.residual <= step.pos0 + step.tokens);
}

// lowbias32, as probeHash in src/kv/zip-format.ts.
fn probe_hash(p: u32) -> u32 {
  var x = p;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

@compute @workgroup_size(64)
fn probe_scores(@builtin(global_invocation_id) gid: vec3u) {
  let first = zip_quantized_count(step.pos0);
  let span = step.pos0 + step.tokens - first;
  let i = invocation(gid);
  if (i >= zp.kv_heads * span) { return; }
  let g = i / span;
  let j = first + i % span;
  let group = zp.heads / zp.kv_heads;
  let recent = (step.tokens + zp.probe_period - 1u) / zp.probe_period;
  var sum = 0.0;
  var probes = 0.0;
  for (var t = select(0u, j - step.pos0, j >= step.pos0); t < step.tokens; t++) {
    if (t + recent < step.tokens && probe_hash(step.pos0 + t) % zp.probe_period != 0u) { continue; }
    probes += 1.0;
    for (var hh = 0u; hh < group; hh++) {
      let h = g * group + hh;
      let qbase = (t * zp.heads + h) * zp.head_dim;
      var s = 0.0;
      for (var c = 0u; c < zp.head_dim; c++) { s += q[qbase + c] * source(0u, j, g * zp.head_dim + c); }
      let stats = (t * zp.heads + h) * 2u;
      sum += exp(s * zp.score_scale - scratch[stats]) / scratch[stats + 1u];
    }
  }
  if (j < step.pos0) {
    let slot = j % zp.residual;
    saliency[g * zp.residual + slot] += sum;
    if (g == 0u) { saliency[zp.kv_heads * zp.residual + slot] += probes; }
  } else {
    let t = j - step.pos0;
    scratch[fresh_acc_offset() + g * zp.max_step + t] = sum;
    if (g == 0u) { scratch[fresh_count_offset() + t] = probes; }
  }
}

@compute @workgroup_size(64)
fn select_salient(@builtin(global_invocation_id) gid: vec3u) {
  let i = invocation(gid);
  if (i >= ap.invocations) { return; }
  let w = i % zp.mask_words;
  let g = (i / zp.mask_words) % zp.kv_heads;
  let block = flushed_block(i / (zp.mask_words * zp.kv_heads));
  if (block == 0xffffffffu) { return; }
  let start = block * zp.residual;
  var word = 0u;
  for (var bit = 0u; bit < 32u && w * 32u + bit < zp.residual; bit++) {
    let r = w * 32u + bit;
    let mine = score(start + r, g);
    // Rank by acc / count, compared as cross products (exact in both implementations); ties: lower position.
    var rank = 0u;
    for (var o = 0u; o < zp.residual; o++) {
      let other = score(start + o, g);
      let a = other.x * mine.y;
      let b = mine.x * other.y;
      if (a > b || (a == b && o < r)) { rank++; }
    }
    if (rank < zp.salient_slots) { word |= 1u << bit; }
  }
  block_meta[mask_index(block, g) + w] = word;
}

@compute @workgroup_size(64)
fn key_scales(@builtin(global_invocation_id) gid: vec3u) {
  let i = invocation(gid);
  if (i >= ap.invocations) { return; }
  let c = i % zp.head_dim;
  let group = (i / zp.head_dim) % zp.key_groups;
  let g = (i / (zp.head_dim * zp.key_groups)) % zp.kv_heads;
  let block = flushed_block(i / (zp.head_dim * zp.key_groups * zp.kv_heads));
  if (block == 0xffffffffu) { return; }
  let salient = group < zp.key_groups_salient;
  let first = (group - select(zp.key_groups_salient, 0u, salient)) * zp.key_group;
  var slot = 0u;
  var lo = 3.0e38;
  var hi = -3.0e38;
  for (var r = 0u; r < zp.residual; r++) {
    if (is_salient(block, g, r) != salient) { continue; }
    if (slot >= first && slot < first + zp.key_group) {
      let x = source(0u, block * zp.residual + r, g * zp.head_dim + c);
      lo = min(lo, x);
      hi = max(hi, x);
    }
    slot++;
  }
  block_meta[block * zp.meta_words + (g * zp.key_groups + group) * zp.head_dim + c] = group_scale(lo, hi, select(zp.low_bits, zp.high_bits, salient));
}

@compute @workgroup_size(64)
fn value_channel_scales(@builtin(global_invocation_id) gid: vec3u) {
  let i = invocation(gid);
  if (i >= ap.invocations) { return; }
  let e = i % zp.row_elems;
  let block = flushed_block(i / zp.row_elems);
  if (block == 0xffffffffu) { return; }
  var largest = 0.0;
  for (var r = 0u; r < zp.residual; r++) { largest = max(largest, abs(source(1u, block * zp.residual + r, e))); }
  // Clamped so that c and 1/c are normal f16 values in [2^-12, 2^12].
  let c = f16_nearest_sqrt(clamp(largest, 5.9604644775390625e-8, 16777216.0));
  block_meta[block * zp.meta_words + zp.channel_scale_offset + e] = c | (f16_nearest_reciprocal(f16_value(c)) << 16u);
}

@compute @workgroup_size(64)
fn value_token_scales(@builtin(global_invocation_id) gid: vec3u) {
  let i = invocation(gid);
  if (i >= ap.invocations) { return; }
  let r = i % zp.residual;
  let block = flushed_block(i / zp.residual);
  if (block == 0xffffffffu) { return; }
  var lo = 3.0e38;
  var hi = -3.0e38;
  for (var e = 0u; e < zp.row_elems; e++) {
    let u = source(1u, block * zp.residual + r, e) * channel_scale(block, e).y;
    lo = min(lo, u);
    hi = max(hi, u);
  }
  block_meta[block * zp.meta_words + zp.value_scale_offset + r] = f16_bits_down(lo) | (f16_bits_up(hi) << 16u);
}

// Token index in its block of slot `slot` of the salient (or regular) subset of KV head g.
fn token_of_slot(block: u32, g: u32, salient: bool, slot: u32) -> u32 {
  var seen = 0u;
  for (var r = 0u; r < zp.residual; r++) {
    if (is_salient(block, g, r) == salient) {
      if (seen == slot) { return r; }
      seen++;
    }
  }
  return 0u;
}

@compute @workgroup_size(64)
fn pack_codes(@builtin(global_invocation_id) gid: vec3u) {
  let i = invocation(gid);
  if (i >= ap.invocations) { return; }
  let w = i % zp.head_words;
  let g = (i / zp.head_words) % zp.kv_heads;
  let block = flushed_block(i / (zp.head_words * zp.kv_heads));
  if (block == 0xffffffffu) { return; }
  let tensor = ap.tensor;
  let salient = w < zp.salient_words;
  let bits = select(zp.low_bits, zp.high_bits, salient);
  let slots = select(zp.residual - zp.salient_slots, zp.salient_slots, salient);
  let per_word = 32u / bits;
  let first = (w - select(zp.salient_words, 0u, salient)) * per_word;
  var word = 0u;
  var cached_slot = 0xffffffffu;
  var r = 0u;
  var loc = 0u;
  var sm = vec2f(0.0);
  for (var k = 0u; k < per_word; k++) {
    let slot = (first + k) / zp.head_dim;
    let c = (first + k) % zp.head_dim;
    if (slot >= slots) { break; }
    if (slot != cached_slot) {
      cached_slot = slot;
      r = token_of_slot(block, g, salient, slot);
      loc = select(0u, SALIENT, salient) | slot;
      if (tensor == 1u) { sm = value_scale(block, r, bits); }
    }
    let e = g * zp.head_dim + c;
    let x = source(tensor, block * zp.residual + r, e);
    var code = 0u;
    if (tensor == 0u) {
      code = quantize_value(x, unpack2x16float(block_meta[key_scale_index(block, g, loc, c)]), bits);
    } else {
      code = quantize_value(x * channel_scale(block, e).y, sm, bits);
    }
    word |= code << (k * bits);
  }
  codes[code_base(block, tensor, g, salient) + w - select(zp.salient_words, 0u, salient)] = word;
}

@compute @workgroup_size(64)
fn ring_append(@builtin(global_invocation_id) gid: vec3u) {
  let i = invocation(gid);
  if (i >= step.tokens * zp.row_elems) { return; }
  let t = i / zp.row_elems;
  let e = i % zp.row_elems;
  let p = step.pos0 + t;
  if (p < zip_quantized_count(step.pos0 + step.tokens)) { return; }
  let slot = p % zp.residual;
  ring[slot * zp.row_elems + e] = to_kvt(k_fresh[i]);
  ring[(zp.residual + slot) * zp.row_elems + e] = to_kvt(v_fresh[i]);
  // Scores of the tokens that stay move from the step's scratch to the layer's accumulator.
  if (e < zp.kv_heads) { saliency[e * zp.residual + slot] = scratch[fresh_acc_offset() + e * zp.max_step + t]; }
  if (e == 0u) { saliency[zp.kv_heads * zp.residual + slot] = scratch[fresh_count_offset() + t]; }
}
