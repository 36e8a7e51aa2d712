// Embedding gather: out[t, c] = table[ids[t] - row_start, c] for the ids that fall in this part of the
// table (large vocabularies are split across several buffers; one dispatch per part).
// Bindings: 0 Params, 1 ids: u32 [T], 2 table: wt [rows, dim], or with WQ ggml blocks of one type
// (WQ_<TYPE>) as u32 words (lib/ggml_blocks.wgsl; dim % block elements == 0), 3 out: f32 [T, dim].
// Dispatch: (ceil(dim / 64), T), one invocation per output element; with WQ `main` takes 32 elements per
// invocation (one wq_group32), dispatch (ceil(dim / 32 / 64), T). `gather_vec4` (WQ only) is the same
// gather through wq_vec4, one invocation per element as without WQ: tests check both readers bit for bit.
struct Params { dim: u32, row_start: u32, rows: u32, tokens: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// The row of this table part that token t's id selects, or NONE when the id lies in another part.
const NONE: u32 = 0xffffffffu;
fn part_row(t: u32) -> u32 {
  let id = ids[t];
  if (id < p.row_start || id >= p.row_start + p.rows) { return NONE; }
  return id - p.row_start;
}

#if WQ
@group(0) @binding(2) var<storage, read> table: array<u32>;
#include ggml_blocks

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let g = gid.x;
  let t = gid.y;
  if (g >= p.dim / 32u || t >= p.tokens) { return; }
  let row = part_row(t);
  if (row == NONE) { return; }
  let v = wq_group32(&table, row, p.dim, g);
  let o = t * p.dim + g * 32u;
  for (var i = 0u; i < 8u; i++) {
    out[o + 4u * i] = v[i].x;
    out[o + 4u * i + 1u] = v[i].y;
    out[o + 4u * i + 2u] = v[i].z;
    out[o + 4u * i + 3u] = v[i].w;
  }
}

@compute @workgroup_size(64)
fn gather_vec4(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let t = gid.y;
  if (c >= p.dim || t >= p.tokens) { return; }
  let row = part_row(t);
  if (row == NONE) { return; }
  out[t * p.dim + c] = wq_vec4(&table, row, p.dim, c / 4u)[c % 4u];
}
#else
@group(0) @binding(2) var<storage, read> table: array<wt>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let t = gid.y;
  if (c >= p.dim || t >= p.tokens) { return; }
  let row = part_row(t);
  if (row == NONE) { return; }
  out[t * p.dim + c] = f32(table[row * p.dim + c]);
}
#endif
