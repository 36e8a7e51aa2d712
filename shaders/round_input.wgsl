// llama.cpp's input rounding, in place: x[i] = the value element i stands for after llama.cpp's CPU back end
// converts the input of a product to the weight type's vec_dot_type (CPU reference:
// src/reference/input-rounding.ts). GGUF files run with it so that their products match llama.cpp's.
//   MODE 0, q8_0: per block of 32, amax = max |x|, d = f16(amax / 127), id = 127 / amax,
//                 x = round_half_even(x · id) · d (x86 quantize_row_q8_0).
//   MODE 1, q8_k: per block of 256, max = the element of largest |x|, iscale = −127 / max, d = 1 / iscale,
//                 x = min(127, round_half_even(iscale · x)) · d (quantize_row_q8_K_ref).
//   MODE 2, f16 / MODE 3, bf16: each element rounded to nearest even.
//   q8_1: MODE 0 with flag Q8_1, which also writes per block sums[b] = f16(d · Σq) − f16(d) · Σq with the f32
//         d = amax / 127 (x86 quantize_row_q8_1's s, less the sum of the rounded values): products with
//         q4_1 / q5_1 weights add m · sums[b] so that their min term is llama.cpp's (min_term.wgsl).
// An all-zero block stays zero. WGSL's f32 division is only within 2.5 ULP (SwiftShader's is not correctly
// rounded), so the quotients are corrected to the CPU's correctly rounded ones (div_rn, exact residuals by
// Dekker's product); x · id is a correctly rounded product in both.
// Bindings: 0 Params, 1 x: f32 [n] (read_write; rows are whole blocks), 2 sums: f32 [n / 32] (Q8_1 only).
// Dispatch: n / BLOCK invocations, flat.
#include f16

struct Params { n: u32, row_stride: u32, _p1: u32, _p2: u32 }

override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
#if Q8_1
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
#endif

fn block_elems() -> u32 {
  if (MODE == 0u) { return 32u; }
  if (MODE == 1u) { return 256u; }
  return 1u;
}

fn bf16_round(v: f32) -> f32 {
  let u = bitcast<u32>(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return v; }
  return bitcast<f32>(((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) << 16u);
}

// a = hi + lo with hi holding the upper 12 bits of the significand (Veltkamp), so products of halves are exact.
fn split(a: f32) -> vec2f {
  let t = 4097.0 * a;
  let hi = t - (t - a);
  return vec2f(hi, a - hi);
}

// |a − q · b| up to rounding far below one ULP of q · b: q · b's rounding error from the split halves (Dekker).
fn residual(a: f32, b: f32, q: f32) -> f32 {
  let p = q * b;
  let qs = split(q);
  let bs = split(b);
  let err = ((qs.x * bs.x - p) + qs.x * bs.y + qs.y * bs.x) + qs.y * bs.y;
  return abs((a - p) - err);
}

// a / b correctly rounded: the quotient or its neighbour one ULP either way, whichever leaves the least residual.
fn div_rn(a: f32, b: f32) -> f32 {
  let q = a / b;
  let down = bitcast<f32>(bitcast<u32>(q) - 1u);
  let up = bitcast<f32>(bitcast<u32>(q) + 1u);
  var best = q;
  var r = residual(a, b, q);
  let rd = residual(a, b, down);
  if (rd < r) { best = down; r = rd; }
  if (residual(a, b, up) < r) { best = up; }
  return best;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = block_elems();
  let b = (gid.x + gid.y * p.row_stride) * n;
  if (b >= p.n) { return; }
  if (MODE == 2u) { x[b] = f16_round(x[b]); return; }
  if (MODE == 3u) { x[b] = bf16_round(x[b]); return; }
  var amax = 0.0;
  var max_v = 0.0;
  for (var j = 0u; j < n; j++) {
    let v = x[b + j];
    if (abs(v) > amax) { amax = abs(v); max_v = v; }
  }
#if Q8_1
  if (amax == 0.0) {
    sums[b / 32u] = 0.0;
    return;
  }
#else
  if (amax == 0.0) { return; }
#endif
  if (MODE == 0u) {
    let d32 = div_rn(amax, 127.0);
    let d = f16_round(d32);
    let id = div_rn(127.0, amax);
    var q_sum = 0.0;
    for (var j = 0u; j < n; j++) {
      let q = round(x[b + j] * id);
      q_sum += q;
      x[b + j] = q * d;
    }
#if Q8_1
    sums[b / 32u] = f16_round(d32 * q_sum) - d * q_sum;
#endif
  } else {
    let iscale = div_rn(-127.0, max_v);
    let d = div_rn(1.0, iscale);
    for (var j = 0u; j < n; j++) { x[b + j] = min(127.0, round(iscale * x[b + j])) * d; }
  }
}
