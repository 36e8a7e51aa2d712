// Library: what the attention kernels (lib/attention_rows.wgsl and its includers) share: their
// uniforms, the query row each invocation keeps (q_row, private: no barrier to load it), and the GQA head
// mapping: head h reads KV head h / (heads / kv_heads). The including library defines MAX_D; the kernel
// file declares `p: AttnParams`, `step: Step` and `q` (f32 [T, heads, head_dim]).

struct AttnParams { tokens: u32, heads: u32, kv_heads: u32, head_dim: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
#include step

var<private> q_row: array<f32, MAX_D>;

// The KV head that head h reads.
fn kv_head_of(h: u32) -> u32 { return h / (p.heads / p.kv_heads); }

// Load q[t, h, :] into this invocation's q_row; returns the row's offset in q and out.
fn load_query(h: u32, t: u32) -> u32 {
  let qbase = (t * p.heads + h) * p.head_dim;
  for (var c = 0u; c < p.head_dim; c++) { q_row[c] = q[qbase + c]; }
  return qbase;
}
