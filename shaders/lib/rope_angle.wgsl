// Library: cos and sin of a RoPE angle (position · inv_freq), reduced to [-pi, pi] in two steps (Cody-Waite)
// first, so they stay accurate at long contexts. Used by rope.wgsl and qkv_split.wgsl.
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

fn rope_cos_sin(angle: f32) -> vec2f {
  let k = round(angle * INV_TWO_PI);
  let reduced = (angle - k * TWO_PI_HI) - k * TWO_PI_LO;
  return vec2f(cos(reduced), sin(reduced));
}
