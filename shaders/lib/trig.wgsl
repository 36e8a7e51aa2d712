// Library: sin and cos of |x| ≤ π/4 to f32 accuracy (Cephes sinf / cosf polynomials), for kernels that need
// them better than WGSL's own, which are only bound to 2^-11 absolute on [-π, π] (SwiftShader's are ~1e-4 off).

fn sin_quarter(x: f32) -> f32 {
  let z = x * x;
  return x + x * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
}

fn cos_quarter(x: f32) -> f32 {
  let z = x * x;
  return 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
}
