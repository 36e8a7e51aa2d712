// Fused greedy decode step for small models: one workgroup runs a whole run of decoder layers of a one-token
// step, phase after phase with workgroup barriers in between, so a step is ceil(layers / slots) dispatches
// instead of ~8 per layer (src/kernels/fused-decode.ts decides when it applies). Per layer:
//   RMSNorm → q|k|v GEMV (+ bias) → per-head q/k RMSNorm (QK_NORM) → RoPE at rope_pos0 (rotate-half, as
//   qkv_split.wgsl) → K/V append at cache slot pos0 (the `full` layout, kvt [capacity, kv_heads, head_dim],
//   to_kvt) → attention over slots 0 ..= pos0 (online softmax in PART_P tasks per head, then a combine)
//   → x += attn·Woᵀ → RMSNorm → silu(gate) ⊙ up → x += ·Wdᵀ.
// The first dispatch of a step embeds ids[0]; the others load the residual stream from x_state, and every
// dispatch but the last stores it back there. The last applies the final norm and the LM head, writes the
// logits row and the argmax (first index on ties; NON_FINITE when any logit is NaN or ±Inf, as argmax.wgsl)
// into ids[0], where the next step reads its token.
// Weights: every tensor of the model in one buffer w: wt, at element offsets (multiples of 4) given in
// FusedParams; a layer's tensors sit at the layer's offsets + layer · layer_stride. wq, wk and wv are one
// [(heads + 2 · kv_heads) · head_dim, hidden] matrix, bq|bk|bv one vector. Gains and biases are read as scalars.
// Shared memory sh: vec4f [SH_N], addressed in f32 elements (offsets multiples of 4) = x [hidden] at 0 | normed
// x at sh_xn | q|k|v at sh_qkv | attention output [heads · head_dim] at sh_att | SwiGLU [ffn] at sh_ff |
// attention partials [heads, PART_P, 4 + head_dim] (max, sum, 2 pad, acc) at sh_part. Vector reads keep CPU
// adapters (SwiftShader), which gather every lane's access separately, at one load per four values.
// Bindings: 0 FusedParams, 1 Step, 2 w, 3 x_state: f32 [hidden], 4 ids: u32 [1], 5 logits: f32 [vocab],
// 6 + 2s, 7 + 2s: K and V cache of the dispatch's layer slot s as vec4<kvt> (head_dim % 4 == 0; slots 1.. with
// flags KV2 .. KV6).
// The attention phase is lib/fused_attention.wgsl.
// Dispatch: 1 workgroup of WG invocations.
struct FusedParams {
  hidden: u32, heads: u32, kv_heads: u32, head_dim: u32,
  ffn: u32, vocab: u32, first_layer: u32, layer_count: u32,
  is_first: u32, is_last: u32, eps: f32, attn_scale: f32,
  embed_off: u32, lm_off: u32, final_norm_off: u32, layer_stride: u32,
  attn_norm_off: u32, wqkv_off: u32, bqkv_off: u32, q_norm_off: u32,
  k_norm_off: u32, wo_off: u32, ffn_norm_off: u32, gate_off: u32,
  up_off: u32, down_off: u32, sh_xn: u32, sh_qkv: u32,
  sh_att: u32, sh_ff: u32, sh_part: u32, _p0: u32,
  inv_freq: array<vec4f, 32>, // f32 [head_dim / 2], four per element
}
#include step
#include rope_angle

override WG: u32 = 64u;
override SH_N: u32 = 1024u; // vec4s
override PART_P: u32 = 4u;
override HAS_BIAS: bool = false;
override QK_NORM: bool = false;
// head_dim / 4 where head_dim ≤ 16 (attention keeps its accumulator in registers), else 0.
override SMALL_D4: u32 = 0u;
// Query heads two by two over each K/V row (attention_pairs): head_dim 4 or 8 and an even number of query heads per KV head.
override PAIRED: bool = false;

#include finite

@group(0) @binding(0) var<uniform> p: FusedParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> w: array<vec4<wt>>;
@group(0) @binding(3) var<storage, read_write> x_state: array<f32>;
@group(0) @binding(4) var<storage, read_write> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> logits: array<f32>;
@group(0) @binding(6) var<storage, read_write> k0: array<vec4<kvt>>;
@group(0) @binding(7) var<storage, read_write> v0: array<vec4<kvt>>;
#if KV2
@group(0) @binding(8) var<storage, read_write> k1: array<vec4<kvt>>;
@group(0) @binding(9) var<storage, read_write> v1: array<vec4<kvt>>;
#endif
#if KV3
@group(0) @binding(10) var<storage, read_write> k2: array<vec4<kvt>>;
@group(0) @binding(11) var<storage, read_write> v2: array<vec4<kvt>>;
#endif
#if KV4
@group(0) @binding(12) var<storage, read_write> k3: array<vec4<kvt>>;
@group(0) @binding(13) var<storage, read_write> v3: array<vec4<kvt>>;
#endif
#if KV5
@group(0) @binding(14) var<storage, read_write> k4: array<vec4<kvt>>;
@group(0) @binding(15) var<storage, read_write> v4: array<vec4<kvt>>;
#endif
#if KV6
@group(0) @binding(16) var<storage, read_write> k5: array<vec4<kvt>>;
@group(0) @binding(17) var<storage, read_write> v5: array<vec4<kvt>>;
#endif

var<workgroup> sh: array<vec4f, SH_N>;
var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;
var<workgroup> any_non_finite: atomic<u32>;

// The K and V cache of one layer slot, as attention reads them.
alias KvBuf = ptr<storage, array<vec4<kvt>>, read_write>;

// Store head_dim values of shared memory from element src at element dst of one layer's K (or V) cache.
fn store_row(c: KvBuf, dst: u32, src: u32) {
  for (var i = 0u; i < p.head_dim; i++) { (*c)[(dst + i) >> 2u][(dst + i) & 3u] = to_kvt(rd(src + i)); }
}

// store_row into the key (or value) cache of the layer in slot s (the slot picked once per row).
fn kv_store_row(s: u32, is_v: bool, dst: u32, src: u32) {
  switch s {
#if KV2
    case 1u: { if (is_v) { store_row(&v1, dst, src); } else { store_row(&k1, dst, src); } }
#endif
#if KV3
    case 2u: { if (is_v) { store_row(&v2, dst, src); } else { store_row(&k2, dst, src); } }
#endif
#if KV4
    case 3u: { if (is_v) { store_row(&v3, dst, src); } else { store_row(&k3, dst, src); } }
#endif
#if KV5
    case 4u: { if (is_v) { store_row(&v4, dst, src); } else { store_row(&k4, dst, src); } }
#endif
#if KV6
    case 5u: { if (is_v) { store_row(&v5, dst, src); } else { store_row(&k5, dst, src); } }
#endif
    default: { if (is_v) { store_row(&v0, dst, src); } else { store_row(&k0, dst, src); } }
  }
}

// Weight element i (gains, biases, embedding rows).
fn w_scalar(i: u32) -> f32 { return f32(w[i / 4u][i % 4u]); }

// Element i of the shared vector memory, read and written as f32.
fn rd(i: u32) -> f32 { return sh[i >> 2u][i & 3u]; }
fn wr(i: u32, v: f32) { sh[i >> 2u][i & 3u] = v; }

fn hsum(v: vec4f) -> f32 { return (v.x + v.y) + (v.z + v.w); }

// Σ_k W[off + r · n + k] · sh[src + k] for the four weight rows r = row0 .. row0 + 3 (each clamped to rows − 1) of
// n values (off, src, n multiples of 4), and the same for rows row_b .. row_b + 3 of the matrix at off_b (the
// next four rows, or the same rows of a second matrix such as up beside gate): eight rows per invocation share
// each load of the input vector, the loads CPU adapters pay most for. One scalar sum per row keeps registers free.
fn dot_rows8(off: u32, row0: u32, off_b: u32, row_b: u32, rows: u32, n: u32, src: u32) -> array<vec4f, 2> {
  let n4 = n / 4u;
  let a0 = off / 4u + min(row0, rows - 1u) * n4;
  let a1 = off / 4u + min(row0 + 1u, rows - 1u) * n4;
  let a2 = off / 4u + min(row0 + 2u, rows - 1u) * n4;
  let a3 = off / 4u + min(row0 + 3u, rows - 1u) * n4;
  let b0 = off_b / 4u + min(row_b, rows - 1u) * n4;
  let b1 = off_b / 4u + min(row_b + 1u, rows - 1u) * n4;
  let b2 = off_b / 4u + min(row_b + 2u, rows - 1u) * n4;
  let b3 = off_b / 4u + min(row_b + 3u, rows - 1u) * n4;
  let x = src / 4u;
  var a = vec4f(0.0);
  var b = vec4f(0.0);
  for (var k4 = 0u; k4 < n4; k4++) {
    let xv = sh[x + k4];
    a += vec4f(dot(vec4f(w[a0 + k4]), xv), dot(vec4f(w[a1 + k4]), xv), dot(vec4f(w[a2 + k4]), xv), dot(vec4f(w[a3 + k4]), xv));
    b += vec4f(dot(vec4f(w[b0 + k4]), xv), dot(vec4f(w[b1 + k4]), xv), dot(vec4f(w[b2 + k4]), xv), dot(vec4f(w[b3 + k4]), xv));
  }
  return array<vec4f, 2>(a, b);
}

// Rows 8 · r8 .. 8 · r8 + 7 of the matrix at off (dot_rows8 over its next four rows).
fn dot_eight(off: u32, r8: u32, rows: u32, n: u32, src: u32) -> array<vec4f, 2> {
  return dot_rows8(off, 8u * r8, off, 8u * r8 + 4u, rows, n, src);
}

// normed x = x / sqrt(mean(x²) + eps) ⊙ gain; every invocation takes the sum itself (no reduction barriers).
fn norm_into_xn(gain_off: u32, lid: u32) {
  let n4 = p.hidden / 4u;
  var sq = vec4f(0.0);
  for (var c = 0u; c < n4; c++) { sq += sh[c] * sh[c]; }
  let s = inverseSqrt(((sq.x + sq.y) + (sq.z + sq.w)) / f32(p.hidden) + p.eps);
  for (var c = lid; c < n4; c += WG) { sh[p.sh_xn / 4u + c] = sh[c] * s * vec4f(w[gain_off / 4u + c]); }
}

// q|k|v of the normed x; q/k norms and RoPE per head; this step's k and v into the cache of slot s.
fn attention_inputs(s: u32, base: u32, lid: u32) {
  let d = p.head_dim;
  let slots = p.heads + 2u * p.kv_heads;
  // Rows come in fours (slots · d, hidden and ffn are multiples of 4), so a quad's outputs are one vec4.
  for (var r8 = lid; 8u * r8 < slots * d; r8 += WG) {
    let v = dot_eight(base + p.wqkv_off, r8, slots * d, p.hidden, p.sh_xn);
    for (var h = 0u; h < 2u; h++) {
      let r4 = 2u * r8 + h;
      if (4u * r4 < slots * d) {
        var o = v[h];
        if (HAS_BIAS) { o += vec4f(w[(base + p.bqkv_off) / 4u + r4]); }
        sh[p.sh_qkv / 4u + r4] = o;
      }
    }
  }
  workgroupBarrier();
  for (var hs = lid; hs < slots; hs += WG) {
    let o = p.sh_qkv + hs * d;
    if (hs < p.heads + p.kv_heads) {
      if (QK_NORM) {
        var sq = 0.0;
        for (var c = 0u; c < d; c++) { sq += rd(o + c) * rd(o + c); }
        let inv = inverseSqrt(sq / f32(d) + p.eps);
        let gain = base + select(p.k_norm_off, p.q_norm_off, hs < p.heads);
        for (var c = 0u; c < d; c++) { wr(o + c, rd(o + c) * inv * w_scalar(gain + c)); }
      }
      let half = d / 2u;
      let pos = f32(step.rope_pos0);
      for (var j = 0u; j < half; j++) {
        let cs = rope_cos_sin(pos * p.inv_freq[j / 4u][j % 4u]);
        let x1 = rd(o + j);
        let x2 = rd(o + j + half);
        wr(o + j, x1 * cs.x - x2 * cs.y);
        wr(o + j + half, x2 * cs.x + x1 * cs.y);
      }
    }
    if (hs >= p.heads) {
      let is_v = hs >= p.heads + p.kv_heads;
      let g = select(hs - p.heads, hs - p.heads - p.kv_heads, is_v);
      let dst = (step.pos0 * p.kv_heads + g) * d;
      kv_store_row(s, is_v, dst, o);
    }
  }
}

#include fused_attention

// x += W · sh[src ..] for the [hidden, n] matrix at off (the attention output and down projections).
fn residual_add_rows(off: u32, n: u32, src: u32, lid: u32) {
  for (var r8 = lid; 8u * r8 < p.hidden; r8 += WG) {
    let v = dot_eight(off, r8, p.hidden, n, src);
    sh[2u * r8] += v[0];
    if (8u * r8 + 4u < p.hidden) { sh[2u * r8 + 1u] += v[1]; }
  }
}

fn decoder_layer(s: u32, base: u32, lid: u32) {
  let hd = p.heads * p.head_dim;
  norm_into_xn(base + p.attn_norm_off, lid);
  workgroupBarrier();
  attention_inputs(s, base, lid);
  storageBarrier();
  workgroupBarrier();
  attention(s, lid);
  workgroupBarrier();
  residual_add_rows(base + p.wo_off, hd, p.sh_att, lid);
  workgroupBarrier();
  norm_into_xn(base + p.ffn_norm_off, lid);
  workgroupBarrier();
  for (var r4 = lid; r4 < p.ffn / 4u; r4 += WG) {
    let gu = dot_rows8(base + p.gate_off, 4u * r4, base + p.up_off, 4u * r4, p.ffn, p.hidden, p.sh_xn);
    let g = gu[0];
    let u = gu[1];
    sh[p.sh_ff / 4u + r4] = g / (1.0 + exp(-g)) * u;
  }
  workgroupBarrier();
  residual_add_rows(base + p.down_off, p.ffn, p.sh_ff, lid);
  workgroupBarrier();
}

// Final norm, LM head (logits row) and argmax into ids[0].
fn lm_head(lid: u32) {
  norm_into_xn(p.final_norm_off, lid);
  workgroupBarrier();
  var bv = -3.4e38;
  var bi = NON_FINITE;
  var bad = false;
  for (var r8 = lid; 8u * r8 < p.vocab; r8 += WG) {
    let v8 = dot_eight(p.lm_off, r8, p.vocab, p.hidden, p.sh_xn);
    for (var i = 0u; i < 8u; i++) {
      let r = 8u * r8 + i;
      if (r < p.vocab) {
        let v = v8[i / 4u][i % 4u];
        logits[r] = v;
        bad = bad || non_finite(v);
        if (v > bv) { bv = v; bi = r; }
      }
    }
  }
  if (bad) { atomicOr(&any_non_finite, 1u); }
  best_v[lid] = bv;
  best_i[lid] = bi;
  workgroupBarrier();
  if (lid == 0u) {
    var v = best_v[0];
    var i = best_i[0];
    for (var k = 1u; k < WG; k++) {
      if (best_v[k] > v || (best_v[k] == v && best_i[k] < i)) {
        v = best_v[k];
        i = best_i[k];
      }
    }
    ids[0] = select(i, NON_FINITE, atomicLoad(&any_non_finite) != 0u);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (p.is_first == 1u) {
    let id = ids[0];
    for (var c = lid; c < p.hidden; c += WG) {
      var v = 0.0;
      if (id < p.vocab) { v = w_scalar(p.embed_off + id * p.hidden + c); }
      wr(c, v);
    }
  } else {
    for (var c = lid; c < p.hidden; c += WG) { wr(c, x_state[c]); }
  }
  workgroupBarrier();
  for (var s = 0u; s < p.layer_count; s++) {
    decoder_layer(s, (p.first_layer + s) * p.layer_stride, lid);
  }
  if (p.is_last == 1u) {
    lm_head(lid);
  } else {
    for (var c = lid; c < p.hidden; c += WG) { x_state[c] = rd(c); }
  }
}
