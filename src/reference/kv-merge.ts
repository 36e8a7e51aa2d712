/**
 * CPU reference of the merged KV layouts (docs/kv-compression.md §3, GPU layout in shaders/kv_merge.wgsl):
 * SLERP of unit directions per token, KV head and tensor with f16 norms, top-γ retention per R-token block,
 * optional KIVI quantization of the directions, and a base layout for the unmerged layers.
 */
import { mergedPairs, type MergeOptions } from '../kv/merge-cache';
import type { QuantFormat } from '../kv/quant-format';
import { slerpWeights } from '../kv/slerp';
import { f16Round, QuantLayerReference } from './kv-quant';
import type { ReferenceKv } from './kv-reference';

interface PairState {
  /** Full-precision rows as received: [layer slot][tensor][position] → row of E. */
  rows: Float32Array[][][];
  /** What attention reads for merged positions: [layer slot][tensor][position]. */
  restored: Float32Array[][][];
  directions: QuantLayerReference | null;
}

/** Merged pairs over a base reference cache for the other layers. */
export class MergeReferenceKv implements ReferenceKv {
  private pairs: PairState[] = [];
  private readonly firsts: number[];
  private readonly baseIndex = new Map<number, number>();

  constructor(
    private readonly numLayers: number,
    private readonly kvHeads: number,
    private readonly headDim: number,
    private readonly options: MergeOptions,
    /** The base layout for `n` unmerged layers. */
    private readonly base: (n: number) => ReferenceKv,
  ) {
    this.firsts = mergedPairs(numLayers, options.startLayer);
    const merged = new Set(this.firsts.flatMap((a) => [a, a + 1]));
    for (let l = 0, i = 0; l < numLayers; l++) if (!merged.has(l)) this.baseIndex.set(l, i++);
    this.baseKv = base(this.baseIndex.size);
    this.reset();
  }

  private baseKv: ReferenceKv;

  /** The row attention reads for merged position p of a pair's layer (0 or 1) and tensor (0 K, 1 V). */
  restoredRow(pair: number, layer: number, tensor: number, p: number): Float32Array {
    return this.pairs[pair].restored[layer][tensor][p];
  }

  reset(): void {
    this.baseKv = this.base(this.baseIndex.size);
    const f = this.options.directionFormat;
    const empty = () => [0, 1].map(() => [0, 1].map(() => [] as Float32Array[]));
    this.pairs = this.firsts.map(() => ({ rows: empty(), restored: empty(), directions: f ? new QuantLayerReference(f as QuantFormat) : null }));
  }

  attend(layer: number, k: Float32Array, v: Float32Array): { k: Float32Array; v: Float32Array } {
    const b = this.baseIndex.get(layer);
    if (b !== undefined) return this.baseKv.attend(b, k, v);
    const first = this.firsts.includes(layer) ? layer : layer - 1;
    const slot = layer - first;
    const pair = this.pairs[this.firsts.indexOf(first)];
    const E = this.kvHeads * this.headDim;
    const R = this.options.residual;
    const pos0 = pair.rows[slot][0].length;
    const T = k.length / E;
    const merged = Math.floor(pos0 / R) * R;
    const out = [new Float32Array((pos0 + T) * E), new Float32Array((pos0 + T) * E)];
    [k, v].forEach((fresh, tensor) => {
      for (let p = 0; p < pos0; p++) out[tensor].set(p < merged ? pair.restored[slot][tensor][p] : pair.rows[slot][tensor][p], p * E);
      out[tensor].set(fresh, pos0 * E);
      for (let t = 0; t < T; t++) pair.rows[slot][tensor].push(fresh.slice(t * E, (t + 1) * E));
    });
    if (slot === 1) {
      for (let start = merged; start + R <= pos0 + T; start += R) this.mergeBlock(pair, start);
    }
    return { k: out[0], v: out[1] };
  }

  /** Merge positions [start, start + R) of a pair whose two layers have both been computed. */
  private mergeBlock(pair: PairState, start: number): void {
    const { residual: R, t, retention } = this.options;
    const d = this.headDim;
    const E = this.kvHeads * d;
    const dirs = [0, 1].map(() => Array.from({ length: R }, () => new Float32Array(E)));
    const norms = [0, 1].map(() => Array.from({ length: R }, () => new Float64Array(2 * this.kvHeads)));
    const distance = new Float32Array(R);
    for (let r = 0; r < R; r++) {
      let cosMin = 2;
      for (let tensor = 0; tensor < 2; tensor++) {
        for (let h = 0; h < this.kvHeads; h++) {
          const a = pair.rows[0][tensor][start + r].subarray(h * d, (h + 1) * d);
          const b = pair.rows[1][tensor][start + r].subarray(h * d, (h + 1) * d);
          // f32 arithmetic in the GPU kernel's order, so the reference stores the same directions.
          const f = Math.fround;
          let saa = 0;
          let sbb = 0;
          let sab = 0;
          for (let c = 0; c < d; c++) {
            saa = f(saa + f(a[c] * a[c]));
            sbb = f(sbb + f(b[c] * b[c]));
            sab = f(sab + f(a[c] * b[c]));
          }
          const na = f(Math.sqrt(saa));
          const nb = f(Math.sqrt(sbb));
          const ia = na > 0 ? f(1 / na) : 0;
          const ib = nb > 0 ? f(1 / nb) : 0;
          const cos = Math.min(Math.max(f(f(sab * ia) * ib), -1), 1);
          const [wa, wb] = slerpWeights(cos, t);
          for (let c = 0; c < d; c++) dirs[tensor][r][h * d + c] = f(f(f(wa * a[c]) * ia) + f(f(wb * b[c]) * ib));
          norms[tensor][r][h] = f16Round(na);
          norms[tensor][r][this.kvHeads + h] = f16Round(nb);
          cosMin = Math.min(cosMin, cos);
        }
      }
      distance[r] = Math.fround(-cosMin);
    }
    // Directions as attention will read them: quantized like KIVI keys/values, or as stored.
    let readDirs = dirs;
    if (pair.directions) {
      pair.directions.append(concatRows(dirs[0]), concatRows(dirs[1]));
      const n = pair.directions.length;
      const view = pair.directions.view(n);
      readDirs = [view.k, view.v].map((all) => Array.from({ length: R }, (_, r) => all.slice((start + r) * E, (start + r + 1) * E)));
    }
    const keep = Math.ceil(retention * R);
    for (let r = 0; r < R; r++) {
      let rank = 0;
      for (let j = 0; j < R; j++) if (distance[j] > distance[r] || (distance[j] === distance[r] && j < r)) rank++;
      for (let slot = 0; slot < 2; slot++) {
        for (let tensor = 0; tensor < 2; tensor++) {
          const row = new Float32Array(E);
          if (rank < keep) row.set(pair.rows[slot][tensor][start + r]);
          else for (let e = 0; e < E; e++) row[e] = Math.fround(norms[tensor][r][slot * this.kvHeads + Math.floor(e / d)] * readDirs[tensor][r][e]);
          pair.restored[slot][tensor][start + r] = row;
        }
      }
    }
  }
}

function concatRows(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}
