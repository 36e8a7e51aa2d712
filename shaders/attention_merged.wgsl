// Attention for one layer of a merged KV pair (layout in kv_merge.wgsl), read in place: a merged past
// position is restored as its norm for this layer times the shared direction (stored in full precision,
// or KIVI-quantized when QUANT_DIRS, dequantized inside the dot product); retained tokens read their
// originals; positions of the current R block and this step come from the ring, which ring_write has
// already filled with this step's rows.
// Bindings: 0 AttnParams, 1 Step, 2 q, 3 out, 4 MergeParams, 5 ring, 6 pair_meta, 7 retained,
//           8 dirs (kvt) or codes (u32, QUANT_DIRS), 9 QuantParams and 10 scales (QUANT_DIRS).
struct MergeParams {
  row_elems: u32, residual: u32, ring_slots: u32, layer_slot: u32,
  kv_heads: u32, head_dim: u32, norms_offset: u32, slots_offset: u32,
  distance_offset: u32, retained_per_block: u32, direction_ring: u32, invocations: u32,
  row_stride: u32, t: f32, _p0: u32, _p1: u32,
}
const NO_SLOT: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> mp: MergeParams;
@group(0) @binding(5) var<storage, read> ring: array<kvt>;
@group(0) @binding(6) var<storage, read> pair_meta: array<u32>;
@group(0) @binding(7) var<storage, read> retained: array<kvt>;
#if QUANT_DIRS
@group(0) @binding(8) var<storage, read> codes: array<u32>;
@group(0) @binding(9) var<uniform> qp: QuantParams;
@group(0) @binding(10) var<storage, read> scales: array<u32>;
#include f16
#include kv_quant
#else
@group(0) @binding(8) var<storage, read> dirs: array<kvt>;
#endif

#include attention_core

// Element e of the merged direction of token j, tensor 0 (K) or 1 (V).
fn direction(j: u32, tensor: u32, e: u32) -> f32 {
#if QUANT_DIRS
  return dequant(j, e, tensor == 0u);
#else
  return f32(dirs[(j * 2u + tensor) * mp.row_elems + e]);
#endif
}

// Element e of token j's row of this layer, tensor 0 (K) or 1 (V); scaled reads fold the norm outside.
fn restored(j: u32, tensor: u32, kvh: u32, e0: u32, c: u32) -> f32 {
  if (j >= (step.pos0 / mp.residual) * mp.residual) {
    return f32(ring[((mp.layer_slot * 2u + tensor) * mp.ring_slots + j % mp.ring_slots) * mp.row_elems + e0 + c]);
  }
  let slot = pair_meta[mp.slots_offset + j];
  if (slot != NO_SLOT) { return f32(retained[((slot * 2u + mp.layer_slot) * 2u + tensor) * mp.row_elems + e0 + c]); }
  let norm = unpack2x16float(pair_meta[mp.norms_offset + (j * 2u + tensor) * mp.kv_heads + kvh])[mp.layer_slot];
  return norm * direction(j, tensor, e0 + c);
}

fn key_dot(j: u32, kvh: u32) -> f32 {
  let e0 = kvh * p.head_dim;
  var s = 0.0;
  for (var c = 0u; c < p.head_dim; c++) { s += q_shared[c] * restored(j, 0u, kvh, e0, c); }
  return s;
}

fn value_at(j: u32, kvh: u32, c: u32) -> f32 {
  return restored(j, 1u, kvh, kvh * p.head_dim, c);
}
