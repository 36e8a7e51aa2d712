// Randomized Hadamard rotation of attention rows, in place (docs/kv-compression.md §5): per row x of head_dim,
// forward y = H·D·x / sqrt(n) and inverse x = D·H·y / sqrt(n), D = diag(±1 signs of the row's KV head), H the
// Walsh–Hadamard matrix of size n = the largest power of two dividing head_dim (block-diagonal over head_dim / n
// blocks otherwise). Query head h uses the signs of KV head h / (heads / kv_heads), so a GQA group and its keys
// share one orthonormal transform and q·k is unchanged.
// Bindings: 0 Params, 1 signs: f32 [kv_heads, head_dim] (±1),
//   forward: 2 q: f32 [T, heads, head_dim], 3 k: f32 [T, kv_heads, head_dim], 4 v: f32 [T, kv_heads, head_dim];
//   inverse: 2 out: f32 [T, heads, head_dim].
// Dispatch: one workgroup of 64 per row, rows = q_rows + 2·kv_rows (forward) or q_rows (inverse), split over x
// and y above the per-dimension limit (row = wg.x + wg.y · row_stride). log2(n) butterfly stages in workgroup memory.
const WG: u32 = 64u;
// Longest row the workgroup memory holds (src/kv/rotated-cache.ts checks head_dim against it).
const MAX_HEAD_DIM: u32 = 512u;

struct Params {
  q_rows: u32,     // T · heads
  kv_rows: u32,    // T · kv_heads
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  block: u32,      // n
  row_stride: u32, // workgroups per dispatch row
  scale: f32,      // 1 / sqrt(n)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> signs: array<f32>;
@group(0) @binding(2) var<storage, read_write> x0: array<f32>;
@group(0) @binding(3) var<storage, read_write> x1: array<f32>;
@group(0) @binding(4) var<storage, read_write> x2: array<f32>;

var<workgroup> s: array<f32, MAX_HEAD_DIM>;

// Unnormalized Walsh–Hadamard butterflies over each n-block of s[0 .. head_dim); ends with a barrier.
fn butterflies(lid: u32) {
  for (var h = 1u; h < p.block; h <<= 1u) {
    workgroupBarrier();
    for (var j = lid; j < p.head_dim / 2u; j += WG) {
      let i = (j / h) * 2u * h + j % h;
      let a = s[i];
      let b = s[i + h];
      s[i] = a + b;
      s[i + h] = a - b;
    }
  }
  workgroupBarrier();
}

fn load(tensor: u32, i: u32) -> f32 {
  switch tensor {
    case 0u: { return x0[i]; }
    case 1u: { return x1[i]; }
    default: { return x2[i]; }
  }
}

fn store(tensor: u32, i: u32, value: f32) {
  switch tensor {
    case 0u: { x0[i] = value; }
    case 1u: { x1[i] = value; }
    default: { x2[i] = value; }
  }
}

// KV head whose signs query row r (of [T, heads]) uses.
fn query_kv_head(r: u32) -> u32 {
  return (r % p.heads) / (p.heads / p.kv_heads);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wg.x + wg.y * p.row_stride;
  if (r >= p.q_rows + 2u * p.kv_rows) { return; }
  var tensor = 0u;
  var row = r;
  var kvh = 0u;
  if (r < p.q_rows) {
    kvh = query_kv_head(r);
  } else {
    let rest = r - p.q_rows;
    tensor = 1u + rest / p.kv_rows;
    row = rest % p.kv_rows;
    kvh = row % p.kv_heads;
  }
  let base = row * p.head_dim;
  let sign = kvh * p.head_dim;
  for (var i = lid; i < p.head_dim; i += WG) { s[i] = load(tensor, base + i) * signs[sign + i]; }
  butterflies(lid);
  for (var i = lid; i < p.head_dim; i += WG) { store(tensor, base + i, s[i] * p.scale); }
}

@compute @workgroup_size(WG)
fn inverse(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wg.x + wg.y * p.row_stride;
  if (r >= p.q_rows) { return; }
  let base = r * p.head_dim;
  let sign = query_kv_head(r) * p.head_dim;
  for (var i = lid; i < p.head_dim; i += WG) { s[i] = x0[base + i]; }
  butterflies(lid);
  for (var i = lid; i < p.head_dim; i += WG) { x0[base + i] = s[i] * p.scale * signs[sign + i]; }
}
