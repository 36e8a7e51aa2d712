// Library of decode_fused.wgsl: the attention phase of a fused decode layer (one workgroup), over the K/V cache
// of the dispatch's layer slot s, from q in shared memory (sh_qkv) into sh_att. Uses the including shader's
// FusedParams p, Step step, shared memory sh, KvBuf, the K/V bindings k0/v0 .. k5/v5 (flags KV2 .. KV6) and the
// overrides WG, PART_P, SMALL_D4 and PAIRED.

// softmax(q·Kᵀ · scale)·V per head over slots 0 .. kv_len − 1 into sh_att: PART_P tasks per head each take every
// PART_P-th slot (online softmax), then they are combined. A partial is (max, sum, pad, pad, acc).
// SMALL_D4 (head_dim ≤ 16) keeps q and acc in registers. kc, vc: the layer's K and V cache (one copy of this
// function per slot binding, so no load picks its buffer at run time).
fn attention_tasks(kc: KvBuf, vc: KvBuf, lid: u32) {
  let d4 = p.head_dim / 4u;
  let stride4 = d4 + 1u;
  for (var task = lid; task < p.heads * PART_P; task += WG) {
    let h = task / PART_P;
    let kvh = h / (p.heads / p.kv_heads);
    let q4 = (p.sh_qkv + h * p.head_dim) / 4u;
    let part = p.sh_part / 4u + task * stride4;
    var m = -1e30;
    var l = 0.0;
    if (SMALL_D4 > 0u) {
      // head_dim ≤ 16: q and the accumulator in registers (a_c: elements 4c .. 4c + 3; SMALL_D4 is constant, so
      // the unused chunks fold away).
      let qa = sh[q4];
      var qb = vec4f(0.0);
      var qc = vec4f(0.0);
      var qd = vec4f(0.0);
      if (SMALL_D4 > 1u) { qb = sh[q4 + 1u]; }
      if (SMALL_D4 > 2u) { qc = sh[q4 + 2u]; }
      if (SMALL_D4 > 3u) { qd = sh[q4 + 3u]; }
      var aa = vec4f(0.0);
      var ab = vec4f(0.0);
      var ac = vec4f(0.0);
      var ad = vec4f(0.0);
      for (var j = task % PART_P; j < step.kv_len; j += PART_P) {
        let row4 = (j * p.kv_heads + kvh) * SMALL_D4;
        var score = dot(qa, vec4f((*kc)[row4]));
        if (SMALL_D4 > 1u) { score += dot(qb, vec4f((*kc)[row4 + 1u])); }
        if (SMALL_D4 > 2u) { score += dot(qc, vec4f((*kc)[row4 + 2u])); }
        if (SMALL_D4 > 3u) { score += dot(qd, vec4f((*kc)[row4 + 3u])); }
        score *= p.attn_scale;
        if (score > m) {
          let r = exp(m - score);
          l *= r;
          aa *= r;
          ab *= r;
          ac *= r;
          ad *= r;
          m = score;
        }
        let weight = exp(score - m);
        l += weight;
        aa += weight * vec4f((*vc)[row4]);
        if (SMALL_D4 > 1u) { ab += weight * vec4f((*vc)[row4 + 1u]); }
        if (SMALL_D4 > 2u) { ac += weight * vec4f((*vc)[row4 + 2u]); }
        if (SMALL_D4 > 3u) { ad += weight * vec4f((*vc)[row4 + 3u]); }
      }
      sh[part + 1u] = aa;
      if (SMALL_D4 > 1u) { sh[part + 2u] = ab; }
      if (SMALL_D4 > 2u) { sh[part + 3u] = ac; }
      if (SMALL_D4 > 3u) { sh[part + 4u] = ad; }
      sh[part] = vec4f(m, l, 0.0, 0.0);
      continue;
    }
    for (var c = 0u; c < d4; c++) { sh[part + 1u + c] = vec4f(0.0); }
    for (var j = task % PART_P; j < step.kv_len; j += PART_P) {
      let row4 = (j * p.kv_heads + kvh) * d4;
      var score = 0.0;
      for (var c = 0u; c < d4; c++) { score += dot(sh[q4 + c], vec4f((*kc)[row4 + c])); }
      score *= p.attn_scale;
      if (score > m) {
        let r = exp(m - score);
        l *= r;
        for (var c = 0u; c < d4; c++) { sh[part + 1u + c] *= r; }
        m = score;
      }
      let weight = exp(score - m);
      l += weight;
      for (var c = 0u; c < d4; c++) { sh[part + 1u + c] += weight * vec4f((*vc)[row4 + c]); }
    }
    sh[part] = vec4f(m, l, 0.0, 0.0);
  }
}

// attention_tasks for PAIRED heads (head_dim 4 or 8, an even number of query heads per KV head): one task per two
// query heads of one KV head, so each key and value row is loaded once for both; the partials are written where
// attention_tasks writes them (task h · PART_P + slot share), so the combine is the same. Named registers
// (a: head h, b: head h + 1; chunk 1 folds away for head_dim 4), as CPU adapters keep indexed arrays in memory.
fn attention_pairs(kc: KvBuf, vc: KvBuf, lid: u32) {
  let stride4 = SMALL_D4 + 1u;
  for (var task = lid; task < p.heads / 2u * PART_P; task += WG) {
    let h = 2u * (task / PART_P);
    let share = task % PART_P;
    let kvh = h / (p.heads / p.kv_heads);
    let q4 = (p.sh_qkv + h * p.head_dim) / 4u;
    let qa0 = sh[q4];
    let qb0 = sh[q4 + SMALL_D4];
    var qa1 = vec4f(0.0);
    var qb1 = vec4f(0.0);
    if (SMALL_D4 > 1u) {
      qa1 = sh[q4 + 1u];
      qb1 = sh[q4 + SMALL_D4 + 1u];
    }
    var m = vec2f(-1e30);
    var l = vec2f(0.0);
    var aa0 = vec4f(0.0);
    var aa1 = vec4f(0.0);
    var ab0 = vec4f(0.0);
    var ab1 = vec4f(0.0);
    for (var j = share; j < step.kv_len; j += PART_P) {
      let row4 = (j * p.kv_heads + kvh) * SMALL_D4;
      let k0v = vec4f((*kc)[row4]);
      let v0v = vec4f((*vc)[row4]);
      var score = vec2f(dot(qa0, k0v), dot(qb0, k0v));
      var k1v = vec4f(0.0);
      var v1v = vec4f(0.0);
      if (SMALL_D4 > 1u) {
        k1v = vec4f((*kc)[row4 + 1u]);
        v1v = vec4f((*vc)[row4 + 1u]);
        score += vec2f(dot(qa1, k1v), dot(qb1, k1v));
      }
      score *= p.attn_scale;
      // Branch-free online softmax (r = 1 unless the maximum moved).
      let m_new = max(m, score);
      let r = exp(m - m_new);
      let weight = exp(score - m_new);
      m = m_new;
      l = l * r + weight;
      aa0 = aa0 * r.x + weight.x * v0v;
      ab0 = ab0 * r.y + weight.y * v0v;
      if (SMALL_D4 > 1u) {
        aa1 = aa1 * r.x + weight.x * v1v;
        ab1 = ab1 * r.y + weight.y * v1v;
      }
    }
    let pa = p.sh_part / 4u + (h * PART_P + share) * stride4;
    let pb = pa + PART_P * stride4;
    sh[pa] = vec4f(m.x, l.x, 0.0, 0.0);
    sh[pb] = vec4f(m.y, l.y, 0.0, 0.0);
    sh[pa + 1u] = aa0;
    sh[pb + 1u] = ab0;
    if (SMALL_D4 > 1u) {
      sh[pa + 2u] = aa1;
      sh[pb + 2u] = ab1;
    }
  }
}

fn attention_slot(kc: KvBuf, vc: KvBuf, lid: u32) {
  if (PAIRED) { attention_pairs(kc, vc, lid); } else { attention_tasks(kc, vc, lid); }
}

fn attention(s: u32, lid: u32) {
  let d4 = p.head_dim / 4u;
  let stride4 = d4 + 1u;
  switch s {
#if KV2
    case 1u: { attention_slot(&k1, &v1, lid); }
#endif
#if KV3
    case 2u: { attention_slot(&k2, &v2, lid); }
#endif
#if KV4
    case 3u: { attention_slot(&k3, &v3, lid); }
#endif
#if KV5
    case 4u: { attention_slot(&k4, &v4, lid); }
#endif
#if KV6
    case 5u: { attention_slot(&k5, &v5, lid); }
#endif
    default: { attention_slot(&k0, &v0, lid); }
  }
  workgroupBarrier();
  for (var e = lid; e < p.heads * d4; e += WG) {
    let first = p.sh_part / 4u + (e / d4) * PART_P * stride4;
    var mx = -1e30;
    for (var i = 0u; i < PART_P; i++) { mx = max(mx, sh[first + i * stride4].x); }
    var total = 0.0;
    var o = vec4f(0.0);
    for (var i = 0u; i < PART_P; i++) {
      let b = first + i * stride4;
      let ml = sh[b];
      let f = exp(ml.x - mx);
      total += ml.y * f;
      o += sh[b + 1u + e % d4] * f;
    }
    sh[p.sh_att / 4u + e] = o / total;
  }
}
