// Library: the packed layout of a quantized KV layer, shared by its append and attention kernels.
// Quantizer (docs/kv-compression.md §1): asymmetric min/max over a group, (s, min) stored as one u32
// holding two f16 (pack2x16float), codes of `bits` bits packed 32/bits per u32 word, code i of a word at
// bit bits·i. Every token row (kv_heads · head_dim = E elements) starts on a word boundary.
//   codes:  u32 [capacity, k_words + v_words]   a token's K codes, then its V codes
//   scales: u32 [K region | V region]           K region at 0, V region at v_scale_offset
//     token grouping  (V always; K in int8):   [capacity, E / group] (s, min) per token and group of channels
//     channel grouping (K in kivi/zip/merge):  [capacity / group, E]  (s, min) per G-token block and channel
//   ring:   kvt [2, S, E]  full-precision residual window, position p at slot p % S (K half, then V half),
//           S = ring_slots
// Tokens [0, quantized_count(n)) of a cache holding n tokens are quantized; the rest sit in the ring.
// Needs lib/f16.wgsl. The including file declares `qp: QuantParams` (uniform) and, where it reads them, `codes`, `scales`, `ring`.

struct QuantParams {
  row_elems: u32,     // E = kv_heads * head_dim
  residual: u32,      // R, tokens kept in full precision (0: none)
  key_block: u32,     // G: tokens per key block (channel grouping)
  k_channel: u32,     // 1: keys grouped per channel over G-token blocks; 0: per token like values
  k_bits: u32,
  v_bits: u32,
  k_words: u32,       // words of one token's K codes
  v_words: u32,
  v_scale_offset: u32,
  groups_per_row: u32, // E / channel_group
  channel_group: u32, // channels sharing one (s, min) per token (token grouping)
  v_blocked: u32,     // 1: values leave the residual in whole R blocks like keys (merged pairs); 0: FIFO
  ring_slots: u32,    // slots per tensor in the ring (R, or R + largest step for merged directions)
  ring_source: u32,   // 1: every flushed row is read from the ring (merged directions); 0: fresh rows for p ≥ pos0
  _p0: u32,
}

// Tokens of a cache holding n tokens that are quantized, for keys (is_key) or values.
fn quantized_count(n: u32, is_key: bool) -> u32 {
  if ((is_key && qp.k_channel == 1u) || (!is_key && qp.v_blocked == 1u)) { return (n / qp.residual) * qp.residual; }
  return select(0u, n - qp.residual, n > qp.residual);
}

fn row_words() -> u32 { return qp.k_words + qp.v_words; }

// (s, min) of element e of token j's K (is_key) or V row.
fn scale_min(j: u32, e: u32, is_key: bool) -> vec2f {
  if (is_key && qp.k_channel == 1u) { return unpack2x16float(scales[(j / qp.key_block) * qp.row_elems + e]); }
  let base = select(qp.v_scale_offset, 0u, is_key);
  return unpack2x16float(scales[base + j * qp.groups_per_row + e / qp.channel_group]);
}

// The integer code of element e of token j.
fn code_at(j: u32, e: u32, is_key: bool) -> u32 {
  let bits = select(qp.v_bits, qp.k_bits, is_key);
  let bit = e * bits;
  let word = codes[j * row_words() + select(qp.k_words, 0u, is_key) + bit / 32u];
  return (word >> (bit % 32u)) & ((1u << bits) - 1u);
}

// Dequantized element e of token j: code · s + min.
fn dequant(j: u32, e: u32, is_key: bool) -> f32 {
  let sm = scale_min(j, e, is_key);
  return f32(code_at(j, e, is_key)) * sm.x + sm.y;
}

#include quant_math
