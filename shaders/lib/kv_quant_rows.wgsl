// Library: whole-row reads of a quantized KV layer (layout in lib/kv_quant.wgsl) for
// lib/attention_rows.wgsl: q_row · K[j] of a quantized key row, and acc += w · V[j] of a quantized
// value row, loading each code word and each (s, min) once per row rather than once per element. Keys
// grouped per channel (KIVI) also cache, per invocation, the (s, min) of the current G-token block: an
// invocation's rows are contiguous, so a block's scales are read once, and a key row costs only its code
// words. Each element is still dequantized as code · s + min before it is multiplied (no factoring out of
// Σ q · min, whose cancellation would lose precision against the CPU reference).
// Include after lib/kv_quant.wgsl and lib/attention_rows.wgsl; the including file declares `qp`,
// `codes` and `scales`.

var<private> key_block_cached: u32 = 0xffffffffu;
var<private> key_block_scales: array<vec2f, MAX_D>; // (s, min) of channel e0 + c of the cached key block

// q_row · K[j, e0 .. e0 + head_dim) for a quantized key row j.
fn quant_key_dot(j: u32, e0: u32) -> f32 {
  let bits = qp.k_bits;
  let mask = (1u << bits) - 1u;
  let word_base = j * row_words();
  var word = 0u;
  var word_index = 0xffffffffu;
  var s = 0.0;
  if (qp.k_channel == 1u) {
    let block = j / qp.key_block;
    if (block != key_block_cached) {
      key_block_cached = block;
      for (var c = 0u; c < p.head_dim; c++) { key_block_scales[c] = unpack2x16float(scales[block * qp.row_elems + e0 + c]); }
    }
    for (var c = 0u; c < p.head_dim; c++) {
      let bit = (e0 + c) * bits;
      if (bit / 32u != word_index) { word_index = bit / 32u; word = codes[word_base + word_index]; }
      let sm = key_block_scales[c];
      s += q_row[c] * (f32((word >> (bit % 32u)) & mask) * sm.x + sm.y);
    }
    return s;
  }
  var sm = vec2f(0.0);
  var group = 0xffffffffu;
  for (var c = 0u; c < p.head_dim; c++) {
    let g = (e0 + c) / qp.channel_group;
    if (g != group) { group = g; sm = unpack2x16float(scales[j * qp.groups_per_row + g]); }
    let bit = (e0 + c) * bits;
    if (bit / 32u != word_index) { word_index = bit / 32u; word = codes[word_base + word_index]; }
    s += q_row[c] * (f32((word >> (bit % 32u)) & mask) * sm.x + sm.y);
  }
  return s;
}

// acc[c] += w · V[j, e0 + c] for a quantized value row j, c < head_dim.
fn quant_value_accumulate(j: u32, e0: u32, w: f32) {
  let bits = qp.v_bits;
  let mask = (1u << bits) - 1u;
  let word_base = j * row_words() + qp.k_words;
  var word = 0u;
  var word_index = 0xffffffffu;
  var sm = vec2f(0.0);
  var group = 0xffffffffu;
  for (var c = 0u; c < p.head_dim; c++) {
    let g = (e0 + c) / qp.channel_group;
    if (g != group) { group = g; sm = unpack2x16float(scales[qp.v_scale_offset + j * qp.groups_per_row + g]); }
    let bit = (e0 + c) * bits;
    if (bit / 32u != word_index) { word_index = bit / 32u; word = codes[word_base + word_index]; }
    acc[c] += w * (f32((word >> (bit % 32u)) & mask) * sm.x + sm.y);
  }
}
