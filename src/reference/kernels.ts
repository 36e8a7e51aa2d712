/**
 * CPU reference of every GPU kernel, with exactly the semantics the WGSL kernels implement.
 * Storage is f32 (Float32Array), sums and softmax accumulate in f64. All layouts are row-major;
 * shape comments list the outermost dimension first.
 */

function check(cond: boolean, what: string): void {
  if (!cond) throw new RangeError(`reference kernel: ${what}`);
}

/** Gather rows of `table` [V, D] for `ids`, giving [T, D]. */
export function embed(table: Float32Array, ids: number[], D: number): Float32Array {
  const V = table.length / D;
  check(Number.isInteger(V), `embedding table of ${table.length} values is not a multiple of D=${D}`);
  const out = new Float32Array(ids.length * D);
  ids.forEach((id, t) => {
    check(Number.isInteger(id) && id >= 0 && id < V, `token id ${id} is outside the vocabulary [0, ${V})`);
    out.set(table.subarray(id * D, (id + 1) * D), t * D);
  });
  return out;
}

/** RMSNorm over the last axis: x [rows, n], weight [n] -> y = x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Float32Array, weight: Float32Array, eps: number): Float32Array {
  const n = weight.length;
  check(x.length % n === 0, `rmsNorm input of ${x.length} values is not a multiple of n=${n}`);
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += n) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r + i] * x[r + i];
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[r + i] = Math.fround(x[r + i] * inv) * weight[i];
  }
  return out;
}

/** y = x · Wᵀ + b with x [T, K], w [N, K] (HF Linear layout), bias [N] -> y [T, N]. */
export function matmul(x: Float32Array, w: Float32Array, N: number, K: number, bias?: Float32Array): Float32Array {
  check(x.length % K === 0, `matmul input of ${x.length} values is not a multiple of K=${K}`);
  check(w.length === N * K, `matmul weight has ${w.length} values, expected N*K = ${N}*${K}`);
  check(!bias || bias.length === N, `matmul bias has ${bias?.length} values, expected N=${N}`);
  const T = x.length / K;
  const out = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    const xo = t * K;
    const yo = t * N;
    let n = 0;
    // Four output rows per pass share each x load: about twice as fast in V8, same f64 sums.
    for (; n + 4 <= N; n += 4) {
      const w0 = n * K;
      const w1 = w0 + K;
      const w2 = w1 + K;
      const w3 = w2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++) {
        const xv = x[xo + k];
        s0 += xv * w[w0 + k];
        s1 += xv * w[w1 + k];
        s2 += xv * w[w2 + k];
        s3 += xv * w[w3 + k];
      }
      out[yo + n] = s0 + (bias ? bias[n] : 0);
      out[yo + n + 1] = s1 + (bias ? bias[n + 1] : 0);
      out[yo + n + 2] = s2 + (bias ? bias[n + 2] : 0);
      out[yo + n + 3] = s3 + (bias ? bias[n + 3] : 0);
    }
    for (; n < N; n++) {
      const wo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * w[wo + k];
      out[yo + n] = s + (bias ? bias[n] : 0);
    }
  }
  return out;
}

/**
 * Rotary embedding in place on x [T, nHeads, d], HF rotate-half convention: for i < d/2,
 * (x[i], x[i + d/2]) rotates by angle positions[t] * invFreq[i]. The angle is rounded to f32 as HF does.
 */
export function applyRope(x: Float32Array, positions: number[], invFreq: Float32Array): void {
  const half = invFreq.length;
  const d = 2 * half;
  const T = positions.length;
  const heads = x.length / (T * d);
  check(Number.isInteger(heads), `rope input of ${x.length} values is not T*heads*d with T=${T}, d=${d}`);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[t] * invFreq[i]);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      for (let h = 0; h < heads; h++) {
        const o = (t * heads + h) * d;
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        x[o + i] = x1 * cos - x2 * sin;
        x[o + i + half] = x2 * cos + x1 * sin;
      }
    }
  }
}

/**
 * Causal multi-head attention with grouped KV heads.
 * q [T, H, d]; kCache, vCache [S, Hk, d] with S >= pos0 + T. Query t sits at absolute position pos0 + t
 * and sees keys 0..pos0 + t. Scores are scaled by 1/sqrt(d); head h reads KV head floor(h / (H / Hk)).
 * Returns [T, H, d].
 */
export function attention(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  pos0: number,
  T: number,
  H: number,
  Hk: number,
  d: number,
): Float32Array {
  check(q.length === T * H * d, `attention q has ${q.length} values, expected T*H*d = ${T}*${H}*${d}`);
  check(H % Hk === 0, `attention heads ${H} are not a multiple of KV heads ${Hk}`);
  check(kCache.length === vCache.length, 'attention K and V caches differ in size');
  const S = kCache.length / (Hk * d);
  check(Number.isInteger(S) && S >= pos0 + T, `attention cache holds ${S} positions, needs ${pos0 + T}`);
  const group = H / Hk;
  const scale = 1 / Math.sqrt(d);
  const out = new Float32Array(T * H * d);
  const scores = new Float64Array(pos0 + T);
  const acc = new Float64Array(d);
  for (let t = 0; t < T; t++) {
    const len = pos0 + t + 1;
    for (let h = 0; h < H; h++) {
      const qo = (t * H + h) * d;
      const kvh = Math.floor(h / group);
      let max = Number.NEGATIVE_INFINITY;
      for (let s = 0; s < len; s++) {
        const ko = (s * Hk + kvh) * d;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[qo + i] * kCache[ko + i];
        scores[s] = dot * scale;
        if (scores[s] > max) max = scores[s];
      }
      let sum = 0;
      for (let s = 0; s < len; s++) {
        scores[s] = Math.exp(scores[s] - max);
        sum += scores[s];
      }
      acc.fill(0);
      for (let s = 0; s < len; s++) {
        const p = scores[s] / sum;
        const vo = (s * Hk + kvh) * d;
        for (let i = 0; i < d; i++) acc[i] += p * vCache[vo + i];
      }
      for (let i = 0; i < d; i++) out[qo + i] = acc[i];
    }
  }
  return out;
}

/** SwiGLU: silu(gate) * up, elementwise, silu(g) = g / (1 + e^-g). */
export function swiglu(gate: Float32Array, up: Float32Array): Float32Array {
  check(gate.length === up.length, `swiglu gate (${gate.length}) and up (${up.length}) differ in size`);
  const out = new Float32Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
  return out;
}

/** Elementwise a + b. */
export function add(a: Float32Array, b: Float32Array): Float32Array {
  check(a.length === b.length, `add operands differ in size (${a.length} vs ${b.length})`);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** Index of the largest value; the first one on ties. NaN never wins. */
export function argmax(x: ArrayLike<number>): number {
  check(x.length > 0, 'argmax of an empty array');
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best] || Number.isNaN(x[best])) best = i;
  return best;
}
