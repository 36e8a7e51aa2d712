// Embedding gather: out[t, c] = table[ids[t] - row_start, c] for the ids that fall in this part of the
// table (large vocabularies are split across several buffers; one dispatch per part).
// Bindings: 0 Params, 1 ids: u32 [T], 2 table: wt [rows, dim], 3 out: f32 [T, dim].
// Dispatch: (ceil(dim / 64), T), one invocation per output element.
struct Params { dim: u32, row_start: u32, rows: u32, tokens: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<wt>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let t = gid.y;
  if (c >= p.dim || t >= p.tokens) { return; }
  let id = ids[t];
  if (id < p.row_start || id >= p.row_start + p.rows) { return; }
  out[t * p.dim + c] = f32(table[(id - p.row_start) * p.dim + c]);
}
