// Library: cos and sin of a RoPE angle (position · inv_freq). The angle is reduced to [-π, π] in two steps
// (Cody-Waite) so it stays accurate at long contexts, then to [-π/4, π/4] and a quadrant, where lib/trig's
// polynomials hold f32 accuracy: WGSL's own cos/sin may be 2^-11 off (SwiftShader's are ~1e-4), and a
// rotated q/k that far off moves attention, and with it llama.cpp-rounded products, at near-ties.
// Used by rope.wgsl, qkv_split.wgsl and the fused decode step.
#include trig
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;
// f32(π/2) and the rest; k · HALF_PI_HI is exact for the quadrants k ∈ [-2, 2].
const HALF_PI_HI: f32 = 1.5707963705062866;
const HALF_PI_LO: f32 = -4.371139000186243e-8;
const TWO_OVER_PI: f32 = 0.6366197723675814;

fn rope_cos_sin(angle: f32) -> vec2f {
  let k = round(angle * INV_TWO_PI);
  let reduced = (angle - k * TWO_PI_HI) - k * TWO_PI_LO;
  let quadrant = round(reduced * TWO_OVER_PI);
  let r = (reduced - quadrant * HALF_PI_HI) - quadrant * HALF_PI_LO;
  let c = cos_quarter(r);
  let s = sin_quarter(r);
  switch (i32(quadrant) & 3) {
    case 1: { return vec2f(-s, c); }
    case 2: { return vec2f(-c, -s); }
    case 3: { return vec2f(s, -c); }
    default: { return vec2f(c, s); }
  }
}
