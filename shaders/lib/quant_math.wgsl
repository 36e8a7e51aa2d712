// Library: the scalar quantizer shared by every quantized KV layout (lib/kv_quant.wgsl, lib/zip_layout.wgsl):
// asymmetric (s, min) with f16 storage, the code of a value under it, and 1 / (2^bits − 1). Decided with exact
// comparisons so that GPU and CPU reference (src/reference/kv-quant.ts) agree bit for bit.
// Needs lib/f16.wgsl (f16_round, f16_bits).

// Code for x under (s, min): floor((x − min)/s + 0.5) clamped to [0, 2^bits − 1]. The estimate from the
// (inexact) division is corrected with exact comparisons: (q ± 0.5)·s is exact in f32 for f16 s and
// q < 2^9, and x − min is correctly rounded, so GPU and CPU reference agree bit for bit.
fn quantize_value(x: f32, sm: vec2f, bits: u32) -> u32 {
  let levels = f32((1u << bits) - 1u);
  let d = x - sm.y;
  var q = clamp(floor(d / sm.x + 0.5), 0.0, levels);
  if (q < levels && d >= (q + 0.5) * sm.x) { q += 1.0; }
  if (q > 0.0 && d < (q - 0.5) * sm.x) { q -= 1.0; }
  return u32(q);
}

// 1 / (2^bits − 1) as the nearest f32, so s is one correctly rounded multiply, as in the CPU reference.
fn inverse_levels(bits: u32) -> f32 {
  switch bits {
    case 2u: { return 0.333333343267; }
    case 4u: { return 0.0666666701436; }
    default: { return 0.00392156885937; }
  }
}

// (s, min) for a group with extremes lo, hi, as stored: min rounded to f16 first, then s from it, both f16.
fn group_scale(lo: f32, hi: f32, bits: u32) -> u32 {
  let m = f16_round(lo);
  let s = max((hi - m) * inverse_levels(bits), 1e-6);
  return f16_bits(s) | (f16_bits(m) << 16u);
}
