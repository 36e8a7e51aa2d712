// Cross-layer merged KV pair (MiniCache, docs/kv-compression.md §3): layers a and b = a + 1 share one
// unit direction per token, KV head and tensor, plus their two norms; the most distant tokens keep
// both originals. Layout per pair (see src/kv/merge-cache.ts):
//   ring      kvt [2 layers, 2 tensors, W, E]  full-precision rows, position p at slot p % W
//   dirs      kvt [capacity, 2 tensors, E]     merged unit directions (merge), or
//   dir_ring  kvt [2 tensors, W, E]            directions waiting to be quantized (merge+kivi)
//   pair_meta      u32 [norms: capacity·2·Hk (f16 n_a | f16 n_b << 16) | slot map: capacity | distance: W]
//   retained  kvt [blocks · k, 2 layers, 2 tensors, E]  originals of retained tokens
// Positions below (n / R) · R are merged (whole R-token blocks); the rest live in the ring.
// Entry points:
//   ring_write     one invocation per (fresh token, element): this layer's fresh K and V → ring
//   merge_flush    one workgroup per flushed position: SLERP per (KV head, tensor), norms, distance
//   retain_select  one workgroup per flushed block: the k most distant tokens keep their originals
struct MergeParams {
  row_elems: u32, residual: u32, ring_slots: u32, layer_slot: u32,
  kv_heads: u32, head_dim: u32, norms_offset: u32, slots_offset: u32,
  distance_offset: u32, retained_per_block: u32, direction_ring: u32, invocations: u32,
  row_stride: u32, t: f32, _p0: u32, _p1: u32,
}
#include step
const WG: u32 = 64u;
const NO_SLOT: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> mp: MergeParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> k_fresh: array<f32>;
@group(0) @binding(3) var<storage, read> v_fresh: array<f32>;
@group(0) @binding(4) var<storage, read_write> ring: array<kvt>;
@group(0) @binding(5) var<storage, read_write> dirs: array<kvt>;
@group(0) @binding(6) var<storage, read_write> pair_meta: array<u32>;
@group(0) @binding(7) var<storage, read_write> retained: array<kvt>;

#include reduce
#include f16
#include slerp

fn merged_count(n: u32) -> u32 { return (n / mp.residual) * mp.residual; }
fn ring_row(layer: u32, tensor: u32, p: u32) -> u32 { return ((layer * 2u + tensor) * mp.ring_slots + p % mp.ring_slots) * mp.row_elems; }

@compute @workgroup_size(64)
fn ring_write(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * mp.row_stride;
  if (i >= step.tokens * mp.row_elems) { return; }
  let p = step.pos0 + i / mp.row_elems;
  let e = i % mp.row_elems;
  ring[ring_row(mp.layer_slot, 0u, p) + e] = to_kvt(k_fresh[i]);
  ring[ring_row(mp.layer_slot, 1u, p) + e] = to_kvt(v_fresh[i]);
}

@compute @workgroup_size(64)
fn merge_flush(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = merged_count(step.pos0) + wg.x;
  if (p >= merged_count(step.pos0 + step.tokens)) { return; }
  var cos_min = 2.0;
  if (lid < 2u * mp.kv_heads) {
    let tensor = lid % 2u;
    let e0 = (lid / 2u) * mp.head_dim;
    let ra = ring_row(0u, tensor, p) + e0;
    let rb = ring_row(1u, tensor, p) + e0;
    var saa = 0.0;
    var sbb = 0.0;
    var sab = 0.0;
    for (var c = 0u; c < mp.head_dim; c++) {
      let xa = f32(ring[ra + c]);
      let xb = f32(ring[rb + c]);
      saa += xa * xa;
      sbb += xb * xb;
      sab += xa * xb;
    }
    let na = sqrt(saa);
    let nb = sqrt(sbb);
    let ia = select(0.0, 1.0 / na, na > 0.0);
    let ib = select(0.0, 1.0 / nb, nb > 0.0);
    let cos_ab = clamp(sab * ia * ib, -1.0, 1.0);
    // SLERP of the unit directions at t (plain interpolation when they are nearly parallel).
    let w = slerp_weights(cos_ab, mp.t);
    let wa = w.x;
    let wb = w.y;
    let dst = select((p * 2u + tensor) * mp.row_elems, (tensor * mp.ring_slots + p % mp.ring_slots) * mp.row_elems, mp.direction_ring == 1u) + e0;
    for (var c = 0u; c < mp.head_dim; c++) {
      dirs[dst + c] = to_kvt(wa * f32(ring[ra + c]) * ia + wb * f32(ring[rb + c]) * ib);
    }
    pair_meta[mp.norms_offset + (p * 2u + tensor) * mp.kv_heads + lid / 2u] = f16_bits(na) | (f16_bits(nb) << 16u);
    cos_min = cos_ab;
  }
  // A token's distance is its largest angle over KV heads and K/V: Ω/π ranks the same as −cos Ω.
  let distance = workgroup_max(-cos_min, lid);
  if (lid == 0u) { pair_meta[mp.distance_offset + p % mp.ring_slots] = bitcast<u32>(distance); }
}

@compute @workgroup_size(64)
fn retain_select(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let block = merged_count(step.pos0) / mp.residual + wg.x;
  let start = block * mp.residual;
  if (start >= merged_count(step.pos0 + step.tokens)) { return; }
  for (var r = lid; r < mp.residual; r += WG) {
    let p = start + r;
    let mine = bitcast<f32>(pair_meta[mp.distance_offset + p % mp.ring_slots]);
    var rank = 0u;
    for (var j = 0u; j < mp.residual; j++) {
      let other = bitcast<f32>(pair_meta[mp.distance_offset + (start + j) % mp.ring_slots]);
      if (other > mine || (other == mine && j < r)) { rank++; }
    }
    var slot = NO_SLOT;
    if (rank < mp.retained_per_block) {
      slot = block * mp.retained_per_block + rank;
      for (var lt = 0u; lt < 4u; lt++) {
        let src = ring_row(lt / 2u, lt % 2u, p);
        let dst = (slot * 4u + lt) * mp.row_elems;
        for (var e = 0u; e < mp.row_elems; e++) { retained[dst + e] = ring[src + e]; }
      }
    }
    pair_meta[mp.slots_offset + p] = slot;
  }
}
