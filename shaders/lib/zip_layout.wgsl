// Library: the packed layout of a `zip` KV layer (ZipCache-style mixed precision, docs/kv-compression.md §2),
// shared by its append kernels (kv_zip_append.wgsl) and attention (attention_zip.wgsl). Full description in
// src/kv/zip-format.ts. Per block b of R tokens:
//   codes u32 [blocks, 2 tensors, Hk, head_words]  S salient rows at high_bits, then R − S regular rows at low_bits
//   block_meta u32 [blocks, meta_words]  key (f16 s, f16 min) [Hk, key_groups, d] | value (f16 lo, f16 hi) [R] |
//                                   channel (f16 c, f16 1/c) [E] | bitmask [Hk, mask_words]
// A token's location in its block for one KV head: bit 31 set when salient, low bits its slot in its subset
// (the rank of its position among the block's salient, or regular, tokens).
// Needs lib/f16.wgsl. The including file declares `zp: ZipParams` (uniform) and `codes`, `block_meta` (u32 arrays).

struct ZipParams {
  row_elems: u32, kv_heads: u32, head_dim: u32, heads: u32,
  residual: u32, key_group: u32, salient_slots: u32, mask_words: u32,
  high_bits: u32, low_bits: u32, key_groups_salient: u32, key_groups: u32,
  salient_words: u32, head_words: u32, code_words: u32, meta_words: u32,
  value_scale_offset: u32, channel_scale_offset: u32, mask_offset: u32, max_step: u32,
  probe_period: u32, score_scale: f32, _p0: u32, _p1: u32,
}

const SALIENT: u32 = 0x80000000u;

fn zip_quantized_count(n: u32) -> u32 { return (n / zp.residual) * zp.residual; }

fn mask_index(block: u32, g: u32) -> u32 { return block * zp.meta_words + zp.mask_offset + g * zp.mask_words; }

// Whether token i of a block is salient for KV head g.
fn is_salient(block: u32, g: u32, i: u32) -> bool {
  return ((block_meta[mask_index(block, g) + i / 32u] >> (i % 32u)) & 1u) == 1u;
}

// Location of token i of a block for KV head g (see the header).
fn zip_locate(block: u32, g: u32, i: u32) -> u32 {
  let base = mask_index(block, g);
  var below = 0u;
  for (var w = 0u; w < i / 32u; w++) { below += countOneBits(block_meta[base + w]); }
  let word = block_meta[base + i / 32u];
  let bit = i % 32u;
  below += countOneBits(word & ((1u << bit) - 1u));
  if (((word >> bit) & 1u) == 1u) { return SALIENT | below; }
  return i - below;
}

fn loc_salient(loc: u32) -> bool { return (loc & SALIENT) != 0u; }
fn loc_bits(loc: u32) -> u32 { return select(zp.low_bits, zp.high_bits, loc_salient(loc)); }
fn loc_slot(loc: u32) -> u32 { return loc & 0x7fffffffu; }

// Index of the first code word of a (block, tensor 0 K / 1 V, head, subset) stream.
fn code_base(block: u32, tensor: u32, g: u32, salient: bool) -> u32 {
  return block * zp.code_words + (tensor * zp.kv_heads + g) * zp.head_words + select(zp.salient_words, 0u, salient);
}

// The integer code of channel c of the token at `loc`.
fn zip_code(block: u32, tensor: u32, g: u32, loc: u32, c: u32) -> u32 {
  let bits = loc_bits(loc);
  let bit = (loc_slot(loc) * zp.head_dim + c) * bits;
  let word = codes[code_base(block, tensor, g, loc_salient(loc)) + bit / 32u];
  return (word >> (bit % 32u)) & ((1u << bits) - 1u);
}

// meta index of the key (s, min) of channel c for the token at `loc`.
fn key_scale_index(block: u32, g: u32, loc: u32, c: u32) -> u32 {
  let group = select(zp.key_groups_salient, 0u, loc_salient(loc)) + loc_slot(loc) / zp.key_group;
  return block * zp.meta_words + (g * zp.key_groups + group) * zp.head_dim + c;
}

// Dequantized key channel c (of KV head g) of the token at `loc`.
fn zip_key(block: u32, g: u32, loc: u32, c: u32) -> f32 {
  let sm = unpack2x16float(block_meta[key_scale_index(block, g, loc, c)]);
  return f32(zip_code(block, 0u, g, loc, c)) * sm.x + sm.y;
}

// (c, 1/c) of channel e of a block's values.
fn channel_scale(block: u32, e: u32) -> vec2f { return unpack2x16float(block_meta[block * zp.meta_words + zp.channel_scale_offset + e]); }

// (s, lo) of token i of a block at `bits` bits: s = (hi − lo)/(2^bits − 1), at least 1e-6, rounded up to f16.
fn value_scale(block: u32, i: u32, bits: u32) -> vec2f {
  let lo_hi = unpack2x16float(block_meta[block * zp.meta_words + zp.value_scale_offset + i]);
  let s = max((lo_hi.y - lo_hi.x) * inverse_levels(bits), 1e-6);
  return vec2f(f16_value(f16_bits_up(s)), lo_hi.x);
}

// Dequantized value channel c (of KV head g) of the token at `loc`, given its value_scale `sm`.
fn zip_value(block: u32, g: u32, loc: u32, c: u32, sm: vec2f) -> f32 {
  let u = f32(zip_code(block, 1u, g, loc, c)) * sm.x + sm.y;
  return u * channel_scale(block, g * zp.head_dim + c).x;
}

fn f16_value(bits: u32) -> f32 { return unpack2x16float(bits).x; }

// The neighbouring f16 bit pattern above (up) or below a finite f16 pattern (sign-magnitude).
fn f16_step(b: u32, up: bool) -> u32 {
  if (b == 0u || b == 0x8000u) { return select(0x8001u, 0x0001u, up); }
  let negative = (b & 0x8000u) != 0u;
  return select(b + 1u, b - 1u, negative == up);
}

// The smallest f16 ≥ x, and the largest f16 ≤ x.
fn f16_bits_up(x: f32) -> u32 {
  let b = f16_bits(x);
  return select(b, f16_step(b, true), f16_value(b) < x);
}
fn f16_bits_down(x: f32) -> u32 {
  let b = f16_bits(x);
  return select(b, f16_step(b, false), f16_value(b) > x);
}

// The f16 nearest sqrt(m) (ties up) for m in [2^-24, 2^24]: the estimate is corrected with midpoints whose
// squares are exact in f32 (12 significant bits), so the answer does not depend on sqrt's accuracy.
fn f16_nearest_sqrt(m: f32) -> u32 {
  var b = f16_bits(sqrt(m));
  for (var i = 0; i < 2; i++) {
    let mid = (f16_value(b) + f16_value(b + 1u)) * 0.5;
    if (m >= mid * mid) { b += 1u; }
  }
  for (var i = 0; i < 2; i++) {
    let mid = (f16_value(b) + f16_value(b - 1u)) * 0.5;
    if (m < mid * mid) { b -= 1u; }
  }
  return b;
}

// The f16 nearest 1/c (ties up) for an f16 c in [2^-12, 2^12]: c · midpoint is exact in f32 (23 bits).
fn f16_nearest_reciprocal(c: f32) -> u32 {
  var b = f16_bits(1.0 / c);
  for (var i = 0; i < 2; i++) {
    if (c * ((f16_value(b) + f16_value(b + 1u)) * 0.5) <= 1.0) { b += 1u; }
  }
  for (var i = 0; i < 2; i++) {
    if (c * ((f16_value(b) + f16_value(b - 1u)) * 0.5) > 1.0) { b -= 1u; }
  }
  return b;
}

#include quant_math
