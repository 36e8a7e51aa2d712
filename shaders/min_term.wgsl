// The min term of a product with q4_1 / q5_1 weights as llama.cpp takes it (its Q8_1 input keeps each block's
// sum s = f16(d · Σq)): y[t, col_start + r] += Σ_b m[r, b] · sums[t, b], sums from round_input.wgsl's Q8_1 mode
// (s − the sum of the block's rounded values), so that a product over the rounded input becomes
// d · Σ q·x + m · s per block. CPU reference: tests/kernels/input-rounding.test.ts (llama.cpp's vec_dot).
// w: the weight's blocks as u32 words, block_bytes (20 or 24, word aligned) per 32 elements, the f16 m at byte 2;
// sums: f32 [T, k / 32]; y: f32 [T, n_total].
// Bindings: 0 Params, 1 w, 2 sums, 3 y. Dispatch: (ceil(rows / 64), T), one invocation per output.
struct Params { tokens: u32, k: u32, rows: u32, col_start: u32, n_total: u32, block_bytes: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> sums: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  let t = gid.y;
  if (r >= p.rows || t >= p.tokens) { return; }
  let nb = p.k / 32u;
  var acc = 0.0;
  for (var b = 0u; b < nb; b++) {
    let m = unpack2x16float(w[(r * nb + b) * p.block_bytes / 4u]).y;
    acc += m * sums[t * nb + b];
  }
  let i = t * p.n_total + p.col_start + r;
  y[i] += acc;
}
