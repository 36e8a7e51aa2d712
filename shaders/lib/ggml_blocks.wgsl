// Library: ggml block-quantized weight rows, read in place in their GGUF byte layout from word storage and
// dequantized exactly as ggml's dequantize_row_* (bit for bit the CPU reference src/reference/ggml-blocks.ts:
// every product formed is exact in f32, so only q4_1/q5_1's add and q4_k/q5_k's subtract round, and FMA
// contraction changes nothing; (q − c)·d is not rewritten as q·d − c·d, which gives +0 for ggml's −0).
// Include under `#if WQ` with exactly one type flag set: WQ_Q4_0, WQ_Q4_1, WQ_Q5_0, WQ_Q5_1, WQ_Q8_0,
// WQ_Q4_K, WQ_Q5_K or WQ_Q6_K. A [rows, k] matrix is rows of k / WQ_ELEMS blocks of WQ_BYTES bytes each,
// back to back from byte 0 of the binding (k a multiple of WQ_ELEMS; the uploader pads the buffer to whole
// words). Blocks are not word aligned (q8_0 is 34 bytes), but every block size is even, so 16-bit fields
// never straddle a word; f16 fields are decoded with unpack2x16float (no shader-f16 needed).
// API, for w: ptr<storage, array<u32>, read>:
//   wq_vec4(w, row, k, k4) -> vec4f              elements 4·k4 .. 4·k4 + 3 of row `row` (k4 < k / 4)
//   wq_group32(w, row, k, g) -> array<vec4f, 8>  elements 32·g .. 32·g + 31 of row `row`, scales decoded once

const WQ_BYTE_SHIFT = vec4u(0u, 8u, 16u, 24u);

// Byte offset of block `blk` of row `row` of a [*, k] matrix.
fn wq_block(row: u32, k: u32, blk: u32) -> u32 {
  return (row * (k / WQ_ELEMS) + blk) * WQ_BYTES;
}

// The f16 at even byte offset `off`.
fn wq_half(w: ptr<storage, array<u32>, read>, off: u32) -> f32 {
  return unpack2x16float((*w)[off >> 2u] >> ((off & 2u) * 8u)).x;
}

// Both f16 of the word at byte offset `off` (a multiple of 4): (d, m) of q4_1/q5_1, (d, dmin) of q4_k/q5_k.
fn wq_half2(w: ptr<storage, array<u32>, read>, off: u32) -> vec2f {
  return unpack2x16float((*w)[off >> 2u]);
}

fn wq_byte(w: ptr<storage, array<u32>, read>, off: u32) -> u32 {
  return ((*w)[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu;
}

fn wq_i8(w: ptr<storage, array<u32>, read>, off: u32) -> f32 {
  return f32(bitcast<i32>(wq_byte(w, off) << 24u) >> 24u);
}

// The word that starts s / 8 bytes into `lo` (s = 0 or 16) and continues into `hi`.
fn wq_funnel(lo: u32, hi: u32, s: u32) -> u32 {
  return (lo >> s) | ((hi << 16u) << (16u - s));
}

// The 4 bytes at even byte offset `off` as a little-endian word. The second word is read only when the
// bytes reach into it (else the first is read again), so nothing past the data is ever touched.
fn wq_word(w: ptr<storage, array<u32>, read>, off: u32) -> u32 {
  let i = off >> 2u;
  let s = (off & 2u) * 8u;
  return wq_funnel((*w)[i], (*w)[i + (s >> 4u)], s);
}

// The 16 bytes at even byte offset `off`, as 4 words. Aligned offsets skip the shifts: in a row of an even
// number of blocks the alignment depends only on the block index, the same in every invocation of gemv_rows.
fn wq_words4(w: ptr<storage, array<u32>, read>, off: u32) -> vec4u {
  let i = off >> 2u;
  let a = (*w)[i];
  let b = (*w)[i + 1u];
  let c = (*w)[i + 2u];
  let d = (*w)[i + 3u];
  if ((off & 2u) == 0u) { return vec4u(a, b, c, d); }
  let e = (*w)[i + 4u];
  return vec4u(wq_funnel(a, b, 16u), wq_funnel(b, c, 16u), wq_funnel(c, d, 16u), wq_funnel(d, e, 16u));
}

// The nibble at bit `shift` (0 or 4) of each byte of v.
fn wq_nibbles(v: u32, shift: u32) -> vec4u {
  return (vec4u(v) >> (WQ_BYTE_SHIFT + shift)) & vec4u(15u);
}

// Bits from `bit` on of each byte of v, under `mask` (q5_k's high bit, q6_k's 2 high bits).
fn wq_byte_bits(v: u32, bit: u32, mask: u32) -> vec4u {
  return (vec4u(v) >> (WQ_BYTE_SHIFT + bit)) & vec4u(mask);
}

// Bits bit .. bit + 3 of v, one per lane (q5_0/q5_1's high bits of 4 consecutive elements).
fn wq_bits4(v: u32, bit: u32) -> vec4u {
  return (vec4u(v) >> (vec4u(0u, 1u, 2u, 3u) + bit)) & vec4u(1u);
}

// Each byte of v as a signed value.
fn wq_i8x4(v: u32) -> vec4f {
  return vec4f(bitcast<vec4i>(vec4u(v) << vec4u(24u, 16u, 8u, 0u)) >> vec4u(24u));
}

// ggml's get_scale_min_k4: the 6-bit (scale, min) of sub-block j (0..7) of the 12 scale bytes at `off`.
fn wq_scale_min_k4(w: ptr<storage, array<u32>, read>, off: u32, j: u32) -> vec2f {
  if (j < 4u) { return vec2f(f32(wq_byte(w, off + j) & 63u), f32(wq_byte(w, off + j + 4u) & 63u)); }
  let packed = wq_byte(w, off + j + 4u);
  let sc = (packed & 15u) | ((wq_byte(w, off + j - 4u) >> 6u) << 4u);
  let m = (packed >> 4u) | ((wq_byte(w, off + j) >> 6u) << 4u);
  return vec2f(f32(sc), f32(m));
}

// (d · sc, dmin · m) of sub-block j of the q4_k/q5_k block at byte offset b (a multiple of 4).
fn wq_k_scales(w: ptr<storage, array<u32>, read>, b: u32, j: u32) -> vec2f {
  return wq_half2(w, b) * wq_scale_min_k4(w, b + 4u, j);
}

#if WQ_Q4_0
// block_q4_0 (18 B): f16 d, 16 B qs; element j < 16 is the low nibble of qs[j], j ≥ 16 the high one of
// qs[j − 16]; y = (q − 8) · d.
const WQ_ELEMS: u32 = 32u;
const WQ_BYTES: u32 = 18u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let j = (k4 * 4u) % 32u;
  let b = wq_block(row, k, k4 / 8u);
  let q = wq_nibbles(wq_word(w, b + 2u + j % 16u), (j / 16u) * 4u);
  return (vec4f(q) - 8.0) * wq_half(w, b);
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g: u32) -> array<vec4f, 8> {
  let b = wq_block(row, k, g);
  let d = wq_half(w, b);
  let q = wq_words4(w, b + 2u);
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 4u; i++) {
    out[i] = (vec4f(wq_nibbles(q[i], 0u)) - 8.0) * d;
    out[i + 4u] = (vec4f(wq_nibbles(q[i], 4u)) - 8.0) * d;
  }
  return out;
}
#endif

#if WQ_Q4_1
// block_q4_1 (20 B, so word aligned): f16 d, f16 m, 16 B qs (nibbles as q4_0); y = q · d + m.
const WQ_ELEMS: u32 = 32u;
const WQ_BYTES: u32 = 20u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let j = (k4 * 4u) % 32u;
  let b = wq_block(row, k, k4 / 8u);
  let dm = wq_half2(w, b);
  let q = wq_nibbles((*w)[(b + 4u + j % 16u) >> 2u], (j / 16u) * 4u);
  return vec4f(q) * dm.x + dm.y;
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g: u32) -> array<vec4f, 8> {
  let b = wq_block(row, k, g);
  let dm = wq_half2(w, b);
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 4u; i++) {
    let q = (*w)[(b >> 2u) + 1u + i];
    out[i] = vec4f(wq_nibbles(q, 0u)) * dm.x + dm.y;
    out[i + 4u] = vec4f(wq_nibbles(q, 4u)) * dm.x + dm.y;
  }
  return out;
}
#endif

#if WQ_Q5_0
// block_q5_0 (22 B): f16 d, u32 qh (bit j = bit 4 of element j), 16 B qs (as q4_0); y = (q − 16) · d.
const WQ_ELEMS: u32 = 32u;
const WQ_BYTES: u32 = 22u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let j = (k4 * 4u) % 32u;
  let b = wq_block(row, k, k4 / 8u);
  let lo = wq_nibbles(wq_word(w, b + 6u + j % 16u), (j / 16u) * 4u);
  let hi = wq_bits4(wq_word(w, b + 2u), j);
  return (vec4f(lo | (hi << vec4u(4u))) - 16.0) * wq_half(w, b);
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g: u32) -> array<vec4f, 8> {
  let b = wq_block(row, k, g);
  let d = wq_half(w, b);
  let qh = wq_word(w, b + 2u);
  let q = wq_words4(w, b + 6u);
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 4u; i++) {
    out[i] = (vec4f(wq_nibbles(q[i], 0u) | (wq_bits4(qh, 4u * i) << vec4u(4u))) - 16.0) * d;
    out[i + 4u] = (vec4f(wq_nibbles(q[i], 4u) | (wq_bits4(qh, 16u + 4u * i) << vec4u(4u))) - 16.0) * d;
  }
  return out;
}
#endif

#if WQ_Q5_1
// block_q5_1 (24 B, word aligned): f16 d, f16 m, u32 qh, 16 B qs (as q5_0); y = q · d + m.
const WQ_ELEMS: u32 = 32u;
const WQ_BYTES: u32 = 24u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let j = (k4 * 4u) % 32u;
  let b = wq_block(row, k, k4 / 8u);
  let dm = wq_half2(w, b);
  let lo = wq_nibbles((*w)[(b + 8u + j % 16u) >> 2u], (j / 16u) * 4u);
  let hi = wq_bits4((*w)[(b >> 2u) + 1u], j);
  return vec4f(lo | (hi << vec4u(4u))) * dm.x + dm.y;
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g: u32) -> array<vec4f, 8> {
  let b = wq_block(row, k, g);
  let dm = wq_half2(w, b);
  let qh = (*w)[(b >> 2u) + 1u];
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 4u; i++) {
    let q = (*w)[(b >> 2u) + 2u + i];
    out[i] = vec4f(wq_nibbles(q, 0u) | (wq_bits4(qh, 4u * i) << vec4u(4u))) * dm.x + dm.y;
    out[i + 4u] = vec4f(wq_nibbles(q, 4u) | (wq_bits4(qh, 16u + 4u * i) << vec4u(4u))) * dm.x + dm.y;
  }
  return out;
}
#endif

#if WQ_Q8_0
// block_q8_0 (34 B): f16 d, 32 × i8 qs; y = q · d.
const WQ_ELEMS: u32 = 32u;
const WQ_BYTES: u32 = 34u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let b = wq_block(row, k, k4 / 8u);
  return wq_i8x4(wq_word(w, b + 2u + (k4 * 4u) % 32u)) * wq_half(w, b);
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g: u32) -> array<vec4f, 8> {
  let b = wq_block(row, k, g);
  let d = wq_half(w, b);
  let q0 = wq_words4(w, b + 2u);
  let q1 = wq_words4(w, b + 18u);
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 4u; i++) {
    out[i] = wq_i8x4(q0[i]) * d;
    out[i + 4u] = wq_i8x4(q1[i]) * d;
  }
  return out;
}
#endif

#if WQ_Q4_K
// block_q4_K (144 B, word aligned): f16 d, f16 dmin, 12 B scales (8 × 6-bit scale and min), 128 B qs.
// Sub-block s (32 elements) is the low (s even) or high nibbles of qs[32·(s/2) ..]; y = d·sc·q − dmin·m.
const WQ_ELEMS: u32 = 256u;
const WQ_BYTES: u32 = 144u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let j = (k4 * 4u) % 256u;
  let s = j / 32u;
  let b = wq_block(row, k, k4 / 64u);
  let dm = wq_k_scales(w, b, s);
  let q = wq_nibbles((*w)[(b + 16u + 32u * (s / 2u) + j % 32u) >> 2u], (s % 2u) * 4u);
  return vec4f(q) * dm.x - dm.y;
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g: u32) -> array<vec4f, 8> {
  let s = g % 8u;
  let b = wq_block(row, k, g / 8u);
  let dm = wq_k_scales(w, b, s);
  let qs = (b + 16u + 32u * (s / 2u)) >> 2u;
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 8u; i++) {
    out[i] = vec4f(wq_nibbles((*w)[qs + i], (s % 2u) * 4u)) * dm.x - dm.y;
  }
  return out;
}
#endif

#if WQ_Q5_K
// block_q5_K (176 B, word aligned): f16 d, f16 dmin, 12 B scales, 32 B qh (bit s of qh[i] = bit 4 of
// element i of sub-block s), 128 B qs (as q4_k); y = d·sc·q − dmin·m.
const WQ_ELEMS: u32 = 256u;
const WQ_BYTES: u32 = 176u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let j = (k4 * 4u) % 256u;
  let s = j / 32u;
  let i = j % 32u;
  let b = wq_block(row, k, k4 / 64u);
  let dm = wq_k_scales(w, b, s);
  let lo = wq_nibbles((*w)[(b + 48u + 32u * (s / 2u) + i) >> 2u], (s % 2u) * 4u);
  let hi = wq_byte_bits((*w)[(b + 16u + i) >> 2u], s, 1u);
  return vec4f(lo + (hi << vec4u(4u))) * dm.x - dm.y;
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g: u32) -> array<vec4f, 8> {
  let s = g % 8u;
  let b = wq_block(row, k, g / 8u);
  let dm = wq_k_scales(w, b, s);
  let qs = (b + 48u + 32u * (s / 2u)) >> 2u;
  let qh = (b + 16u) >> 2u;
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 8u; i++) {
    let lo = wq_nibbles((*w)[qs + i], (s % 2u) * 4u);
    let hi = wq_byte_bits((*w)[qh + i], s, 1u);
    out[i] = vec4f(lo + (hi << vec4u(4u))) * dm.x - dm.y;
  }
  return out;
}
#endif

#if WQ_Q6_K
// block_q6_K (210 B): 128 B ql, 64 B qh, 16 × i8 scales, f16 d. Element j: half n = j / 128, quarter
// g = (j % 128) / 32, l = j % 32; low 4 bits from nibble g / 2 of ql[64n + 32(g % 2) + l], high 2 bits
// from bits 2g of qh[32n + l], scale sc[8n + 2g + l / 16]; y = d·sc·(q − 32).
const WQ_ELEMS: u32 = 256u;
const WQ_BYTES: u32 = 210u;

fn wq_vec4(w: ptr<storage, array<u32>, read>, row: u32, k: u32, k4: u32) -> vec4f {
  let j = (k4 * 4u) % 256u;
  let n = j / 128u;
  let g = (j % 128u) / 32u;
  let l = j % 32u;
  let b = wq_block(row, k, k4 / 64u);
  let lo = wq_nibbles(wq_word(w, b + 64u * n + 32u * (g % 2u) + l), (g / 2u) * 4u);
  let hi = wq_byte_bits(wq_word(w, b + 128u + 32u * n + l), 2u * g, 3u);
  let d = wq_half(w, b + 208u) * wq_i8(w, b + 192u + 8u * n + 2u * g + l / 16u);
  return d * (vec4f(lo | (hi << vec4u(4u))) - 32.0);
}

fn wq_group32(w: ptr<storage, array<u32>, read>, row: u32, k: u32, g32: u32) -> array<vec4f, 8> {
  let n = (g32 % 8u) / 4u;
  let g = g32 % 4u;
  let b = wq_block(row, k, g32 / 8u);
  let d = wq_half(w, b + 208u);
  let sc = b + 192u + 8u * n + 2u * g;
  let d0 = d * wq_i8(w, sc);
  let d1 = d * wq_i8(w, sc + 1u);
  let ql = b + 64u * n + 32u * (g % 2u);
  let qh = b + 128u + 32u * n;
  let l0 = wq_words4(w, ql);
  let l1 = wq_words4(w, ql + 16u);
  let h0 = wq_words4(w, qh);
  let h1 = wq_words4(w, qh + 16u);
  var out: array<vec4f, 8>;
  for (var i = 0u; i < 4u; i++) {
    out[i] = d0 * (vec4f(wq_nibbles(l0[i], (g / 2u) * 4u) | (wq_byte_bits(h0[i], 2u * g, 3u) << vec4u(4u))) - 32.0);
    out[i + 4u] = d1 * (vec4f(wq_nibbles(l1[i], (g / 2u) * 4u) | (wq_byte_bits(h1[i], 2u * g, 3u) << vec4u(4u))) - 32.0);
  }
  return out;
}
#endif
