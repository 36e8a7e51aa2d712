// Library: what the two attention schemes (lib/attention_core.wgsl, lib/attention_rows.wgsl) share: their
// uniforms, the query row in workgroup memory, and the per-workgroup setup. One workgroup per (head h,
// query token t); GQA: head h reads KV head h / (heads / kv_heads). The including library defines WG and
// MAX_D; the kernel file declares `p: AttnParams`, `step: Step` and `q` (f32 [T, heads, head_dim]).

struct AttnParams { tokens: u32, heads: u32, kv_heads: u32, head_dim: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
struct Step { pos0: u32, kv_len: u32, tokens: u32, _pad: u32 }

var<workgroup> q_shared: array<f32, MAX_D>;

// The KV head that head h reads.
fn kv_head_of(h: u32) -> u32 { return h / (p.heads / p.kv_heads); }

// Load q[t, h, :] into q_shared (all invocations, then a barrier); returns the row's offset in q and out.
fn load_query(h: u32, t: u32, lid: u32) -> u32 {
  let qbase = (t * p.heads + h) * p.head_dim;
  for (var c = lid; c < p.head_dim; c += WG) { q_shared[c] = q[qbase + c]; }
  workgroupBarrier();
  return qbase;
}
