// Library: exact f32 → f16 rounding for values the GPU stores and the CPU reference must reproduce bit for bit.

// f32 → f16 bits, round to nearest even, with subnormals. Written out because pack2x16float's rounding
// is implementation-defined, and the stored (s, min) must match the CPU reference exactly.
fn f16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a >= 0x477ff000u) { return sign | 0x7bffu; }              // beyond f16 range: clamp to ±65504
  if (a < 0x38800000u) { return sign | u32(round(bitcast<f32>(a) * 16777216.0)); } // subnormal: m · 2^-24
  let e = a - 0x38000000u;                                       // rebias the exponent from 127 to 15
  return sign | ((e + 0xfffu + ((e >> 13u) & 1u)) >> 13u);
}

fn f16_round(x: f32) -> f32 { return unpack2x16float(f16_bits(x)).x; }

