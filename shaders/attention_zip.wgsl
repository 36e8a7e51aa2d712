// Attention over a `zip` KV layer read in place (layout in lib/zip_layout.wgsl), causal, with online softmax.
// Positions below Q(pos0) are dequantized from the mixed-precision codes inside the dot product and the value
// sum, a whole row at a time (its block location, bit width, code stream and value scale found once per row);
// positions [Q(pos0), pos0) come from the full-precision ring; this step's own positions from its fresh f32
// rows. Each invocation owns a contiguous chunk of rows (lib/attention_rows.wgsl). Besides the output, each
// (query row, head) writes its softmax max and sum to the scratch, so the saliency probes
// (kv_zip_append.wgsl: probe_scores) get exact probabilities by scoring only the ring tokens.
// Bindings: 0 ZipParams, 1 Step, 2 q f32 [T, H, d], 3 out f32 [T, H, d], 4 k_fresh, 5 v_fresh f32 [T, E],
//           6 ring kvt [2, R, E], 7 codes u32, 8 block_meta u32, 9 scratch f32 (row stats at [t, h, 2]),
//           10 AttnParams.
// Saliency entry points (eviction by saliency): lib/saliency_rows.wgsl, bindings 12-14.

@group(0) @binding(0) var<uniform> zp: ZipParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> k_fresh: array<f32>;
@group(0) @binding(5) var<storage, read> v_fresh: array<f32>;
@group(0) @binding(6) var<storage, read> ring: array<kvt>;
@group(0) @binding(7) var<storage, read> codes: array<u32>;
@group(0) @binding(8) var<storage, read> block_meta: array<u32>;
@group(0) @binding(9) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(10) var<uniform> p: AttnParams;

#include f16
#include zip_layout
#include attention_rows

// Location of each row of the current score batch, kept from row_score for row_accumulate (rows of one
// batch are consecutive, so j % ROW_BATCH is distinct within it).
var<private> batch_loc: array<u32, ROW_BATCH>;

fn row_score(j: u32, kvh: u32) -> f32 {
  let d = p.head_dim;
  var s = 0.0;
  if (j < zip_quantized_count(step.pos0)) {
    let block = j / zp.residual;
    let loc = zip_locate(block, kvh, j % zp.residual);
    batch_loc[j % ROW_BATCH] = loc;
    let bits = loc_bits(loc);
    let mask = (1u << bits) - 1u;
    let word_base = code_base(block, 0u, kvh, loc_salient(loc));
    let bit0 = loc_slot(loc) * d * bits;
    let scale_base = key_scale_index(block, kvh, loc, 0u);
    for (var c = 0u; c < d; c++) {
      let bit = bit0 + c * bits;
      let code = (codes[word_base + bit / 32u] >> (bit % 32u)) & mask;
      let sm = unpack2x16float(block_meta[scale_base + c]);
      s += q_row[c] * (f32(code) * sm.x + sm.y);
    }
  } else if (j >= step.pos0) {
    let base = (j - step.pos0) * zp.row_elems + kvh * d;
    for (var c = 0u; c < d; c++) { s += q_row[c] * k_fresh[base + c]; }
  } else {
    let base = (j % zp.residual) * zp.row_elems + kvh * d;
    for (var c = 0u; c < d; c++) { s += q_row[c] * f32(ring[base + c]); }
  }
  return s;
}

fn row_accumulate(j: u32, kvh: u32, w: f32) {
  let d = p.head_dim;
  let e0 = kvh * d;
  if (j < zip_quantized_count(step.pos0)) {
    let block = j / zp.residual;
    let loc = batch_loc[j % ROW_BATCH];
    let bits = loc_bits(loc);
    let mask = (1u << bits) - 1u;
    let word_base = code_base(block, 1u, kvh, loc_salient(loc));
    let bit0 = loc_slot(loc) * d * bits;
    let sm = value_scale(block, j % zp.residual, bits);
    let channel_base = block * zp.meta_words + zp.channel_scale_offset + e0;
    for (var c = 0u; c < d; c++) {
      let bit = bit0 + c * bits;
      let code = (codes[word_base + bit / 32u] >> (bit % 32u)) & mask;
      let u = f32(code) * sm.x + sm.y;
      acc[c] += w * (u * unpack2x16float(block_meta[channel_base + c]).x);
    }
  } else if (j >= step.pos0) {
    let base = (j - step.pos0) * zp.row_elems + e0;
    for (var c = 0u; c < d; c++) { acc[c] += w * v_fresh[base + c]; }
  } else {
    let base = (zp.residual + j % zp.residual) * zp.row_elems + e0;
    for (var c = 0u; c < d; c++) { acc[c] += w * f32(ring[base + c]); }
  }
}

// The row's softmax max and sum, for the saliency probes.
fn row_stats(t: u32, h: u32, m: f32, l: f32, lid: u32) {
  if (lid == 0u) {
    scratch[(t * zp.heads + h) * 2u] = m;
    scratch[(t * zp.heads + h) * 2u + 1u] = l;
  }
}

#include saliency_rows
