/**
 * SLERP weights exactly as shaders/lib/slerp.wgsl computes them: the same polynomials and the same f32
 * operation order (every step rounded with Math.fround), so the CPU reference stores the same merged
 * directions as the GPU.
 */
const f = Math.fround;
const HALF_PI = f(1.57079637);
const PI = f(3.14159274);
const QUARTER_PI = f(0.785398185);
const c32 = (x: number) => f(x);
const mul = (a: number, b: number) => f(a * b);
const add = (a: number, b: number) => f(a + b);

function asinSmall(x: number): number {
  const z = mul(x, x);
  let p = add(mul(c32(4.2163199048e-2), z), c32(2.4181311049e-2));
  p = add(mul(p, z), c32(4.5470025998e-2));
  p = add(mul(p, z), c32(7.4953002686e-2));
  p = add(mul(p, z), c32(1.6666752422e-1));
  return add(x, mul(mul(x, z), p));
}

function acosPoly(c: number): number {
  const a = Math.abs(c);
  if (a <= 0.5) return f(HALF_PI - (c < 0 ? -asinSmall(a) : asinSmall(a)));
  const half = mul(2, asinSmall(f(Math.sqrt(mul(f(1 - a), 0.5)))));
  return c < 0 ? f(PI - half) : half;
}

function sinPoly(xIn: number): number {
  const x = xIn > HALF_PI ? f(PI - xIn) : xIn;
  if (x <= QUARTER_PI) {
    const z = mul(x, x);
    const p = f(mul(add(mul(c32(-1.9515295891e-4), z), c32(8.3321608736e-3)), z) - c32(1.6666654611e-1));
    return add(x, mul(mul(x, z), p));
  }
  const y = f(HALF_PI - x);
  const z = mul(y, y);
  const p = add(mul(f(mul(c32(2.443315711809948e-5), z) - c32(1.388731625493765e-3)), z), c32(4.166664568298827e-2));
  return add(f(1 - mul(0.5, z)), mul(mul(z, z), p));
}

/** (w_a, w_b) with SLERP(u_a, u_b; t) = w_a·u_a + w_b·u_b for unit vectors with cosine c. */
export function slerpWeights(c: number, t: number): [number, number] {
  const omega = acosPoly(c);
  const s = sinPoly(omega);
  const tt = f(t);
  if (s <= 1e-4) return [f(1 - tt), tt];
  return [f(sinPoly(mul(f(1 - tt), omega)) / s), f(sinPoly(mul(tt, omega)) / s)];
}
