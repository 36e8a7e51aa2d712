// Elementwise kernels over flat f32 arrays of length n.
//   add_inplace: x[i] += y[i]                 (residual connections)
//   swiglu:      gate[i] = silu(gate[i]) * up[i]  (the Llama MLP activation, written over gate)
// Bindings: 0 Params, 1 x / gate: f32 [n] (read_write), 2 y / up: f32 [n].
// Dispatch: ceil(n / 64) invocations, split over x and y when above the per-dimension limit.
struct Params { n: u32, row_stride: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

fn flat_index(gid: vec3u) -> u32 {
  return gid.x + gid.y * p.row_stride;
}

@compute @workgroup_size(64)
fn add_inplace(@builtin(global_invocation_id) gid: vec3u) {
  let i = flat_index(gid);
  if (i >= p.n) { return; }
  x[i] = x[i] + y[i];
}

@compute @workgroup_size(64)
fn swiglu(@builtin(global_invocation_id) gid: vec3u) {
  let i = flat_index(gid);
  if (i >= p.n) { return; }
  let g = x[i];
  x[i] = g / (1.0 + exp(-g)) * y[i];
}
