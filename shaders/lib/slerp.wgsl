// Library: SLERP weights for unit vectors with cosine c, from polynomials using only +, −, ×, sqrt and one
// division, so the CPU reference (src/kv/slerp.ts) reproduces them to within an ulp. WGSL's own acos and
// sin are only accurate to ~2^-11 absolute, which would make merged directions (and their quantization
// codes) differ from the reference. Polynomials: Cephes asinf / sinf / cosf (f32 accuracy).
const HALF_PI: f32 = 1.57079637;
const PI: f32 = 3.14159274;
const QUARTER_PI: f32 = 0.785398185;
#include trig

// asin(x) for 0 ≤ x ≤ 0.5.
fn asin_small(x: f32) -> f32 {
  let z = x * x;
  let p = (((4.2163199048e-2 * z + 2.4181311049e-2) * z + 4.5470025998e-2) * z + 7.4953002686e-2) * z + 1.6666752422e-1;
  return x + x * z * p;
}

// acos(c) for −1 ≤ c ≤ 1.
fn acos_poly(c: f32) -> f32 {
  let a = abs(c);
  if (a <= 0.5) { return HALF_PI - select(asin_small(a), -asin_small(a), c < 0.0); }
  let half_angle = 2.0 * asin_small(sqrt((1.0 - a) * 0.5));
  return select(half_angle, PI - half_angle, c < 0.0);
}

// sin(x) for 0 ≤ x ≤ π.
fn sin_poly(x_in: f32) -> f32 {
  let x = select(x_in, PI - x_in, x_in > HALF_PI);
  if (x <= QUARTER_PI) { return sin_quarter(x); }
  return cos_quarter(HALF_PI - x);
}

// (w_a, w_b) with SLERP(u_a, u_b; t) = w_a·u_a + w_b·u_b; plain interpolation when nearly parallel.
fn slerp_weights(c: f32, t: f32) -> vec2f {
  let omega = acos_poly(c);
  let s = sin_poly(omega);
  if (s <= 1e-4) { return vec2f(1.0 - t, t); }
  return vec2f(sin_poly((1.0 - t) * omega) / s, sin_poly(t * omega) / s);
}
