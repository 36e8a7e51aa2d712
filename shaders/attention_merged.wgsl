// Attention for one layer of a merged KV pair (layout in kv_merge.wgsl), read in place: a merged past
// position is restored as its norm for this layer times the shared direction (stored in full precision,
// or KIVI-quantized when QUANT_DIRS, dequantized inside the dot product by lib/kv_quant_rows.wgsl);
// retained tokens read their originals; positions of the current R block and this step come from the
// ring, which ring_write has already filled with this step's rows. Each invocation owns a contiguous
// chunk of rows (lib/attention_rows.wgsl), so a row's slot and norm are looked up once per row.
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

#include attention_rows
#if QUANT_DIRS
#include kv_quant_rows
#endif

// Where row j of tensor 0 (K) or 1 (V) of this layer lives, as an element offset: in the ring (kind 0)
// or the retained originals (kind 1); kind 2: merged, restored as norm · direction.
struct RowSource { kind: u32, base: u32, norm: f32 }

fn row_source(j: u32, tensor: u32, e0: u32) -> RowSource {
  if (j >= (step.pos0 / mp.residual) * mp.residual) {
    return RowSource(0u, ((mp.layer_slot * 2u + tensor) * mp.ring_slots + j % mp.ring_slots) * mp.row_elems + e0, 1.0);
  }
  let slot = pair_meta[mp.slots_offset + j];
  if (slot != NO_SLOT) { return RowSource(1u, ((slot * 2u + mp.layer_slot) * 2u + tensor) * mp.row_elems + e0, 1.0); }
  let norm = unpack2x16float(pair_meta[mp.norms_offset + (j * 2u + tensor) * mp.kv_heads + e0 / mp.head_dim])[mp.layer_slot];
  return RowSource(2u, (j * 2u + tensor) * mp.row_elems + e0, norm);
}

fn row_score(j: u32, kvh: u32) -> f32 {
  let e0 = kvh * p.head_dim;
  let src = row_source(j, 0u, e0);
  var s = 0.0;
  if (src.kind == 0u) {
    for (var c = 0u; c < p.head_dim; c++) { s += q_row[c] * f32(ring[src.base + c]); }
  } else if (src.kind == 1u) {
    for (var c = 0u; c < p.head_dim; c++) { s += q_row[c] * f32(retained[src.base + c]); }
  } else {
#if QUANT_DIRS
    s = quant_key_dot(j, e0);
#else
    for (var c = 0u; c < p.head_dim; c++) { s += q_row[c] * f32(dirs[src.base + c]); }
#endif
    s *= src.norm;
  }
  return s;
}

fn row_accumulate(j: u32, kvh: u32, w: f32) {
  let e0 = kvh * p.head_dim;
  let src = row_source(j, 1u, e0);
  if (src.kind == 0u) {
    for (var c = 0u; c < p.head_dim; c++) { acc[c] += w * f32(ring[src.base + c]); }
  } else if (src.kind == 1u) {
    for (var c = 0u; c < p.head_dim; c++) { acc[c] += w * f32(retained[src.base + c]); }
  } else {
#if QUANT_DIRS
    quant_value_accumulate(j, e0, w * src.norm);
#else
    let wn = w * src.norm;
    for (var c = 0u; c < p.head_dim; c++) { acc[c] += wn * f32(dirs[src.base + c]); }
#endif
  }
}

fn row_stats(t: u32, h: u32, m: f32, l: f32, lid: u32) {}
