// KV eviction in place: compact the rows of one buffer region so that row i becomes row keep[i] (keep is
// ascending, so keep[i] >= i). Rows are read as u32 words whatever they hold (kvt K/V rows in f16 or f32,
// packed codes, f16 (s, min) pairs, f32 saliency), so one kernel serves every layout (src/kv/eviction.ts).
// One invocation per word column walks the kept rows in order: it alone touches its column, and it reads row
// keep[i] before anything overwrites it (rows written so far are < i <= keep[i]), so the move needs no copy.
// Bindings: 0 Params, 1 keep u32 [kept], 2 data u32 (the region starts at word `base`, rows of row_words words).
// Dispatch: ceil(row_words / 64) workgroups, split over x and y by `row_stride` invocations.
struct Params { row_words: u32, kept: u32, base: u32, row_stride: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keep: array<u32>;
@group(0) @binding(2) var<storage, read_write> data: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x + gid.y * p.row_stride;
  if (c >= p.row_words) { return; }
  for (var i = 0u; i < p.kept; i++) {
    let src = keep[i];
    if (src != i) { data[p.base + i * p.row_words + c] = data[p.base + src * p.row_words + c]; }
  }
}
