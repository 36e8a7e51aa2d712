// Library: the non-finite check of greedy argmax kernels (argmax.wgsl, decode_fused.wgsl). NON_FINITE
// (0xffffffff, never a token id) is what they write instead of an id when a logit is NaN or ±Inf.
const NON_FINITE: u32 = 0xffffffffu;

// NaN and ±Inf have an all-ones exponent; tested on the bits, as float comparisons may assume finite values.
fn non_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }
