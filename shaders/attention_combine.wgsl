// Split-K attention, second pass: merge the SPLITS partial results of lib/attention_rows.wgsl main_split
// (per query t and head h: max m_s, sum l_s = Σ exp(score − m_s), a_s = Σ exp(score − m_s) · V) into
//   out[t, h, c] = Σ_s exp(m_s − M) · a_s[c] / Σ_s exp(m_s − M) · l_s,   M = max_s m_s.
// A split without keys has l_s = 0 and a_s = 0; split 0 always holds key 0.
// Bindings: 0 Params, 1 partials: f32 [T, heads, splits, 2 + head_dim], 2 out: f32 [T, heads, head_dim].
// Dispatch: ceil(T · heads · head_dim / 64), one invocation per output value.
struct Params { tokens: u32, heads: u32, head_dim: u32, splits: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.tokens * p.heads * p.head_dim) { return; }
  let row = i / p.head_dim; // t · heads + h
  let c = i % p.head_dim;
  let stride = 2u + p.head_dim;
  let first = row * p.splits * stride;
  var m = -1e30;
  for (var s = 0u; s < p.splits; s++) { m = max(m, partials[first + s * stride]); }
  var l = 0.0;
  var a = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    let base = first + s * stride;
    let f = exp(partials[base] - m);
    l += f * partials[base + 1u];
    a += f * partials[base + 2u + c];
  }
  out[i] = a / l;
}
