/**
 * How the CPU reference model keeps K/V: the interface every reference cache mode implements, and the
 * full-precision mode. `attend` is called once per layer per step with that step's fresh K/V (after RoPE)
 * and returns the rows [past + fresh, Hk·d] attention should read; the mode then stores the fresh rows.
 */

/** A reference KV cache mode. */
export interface ReferenceKv {
  /** `q` [T, H, d] (after RoPE) is the step's queries, for modes that score saliency (zip); others ignore it. */
  attend(layer: number, k: Float32Array, v: Float32Array, q?: Float32Array): { k: Float32Array; v: Float32Array };
  reset(): void;
  /** Keep only the rows `keep` (ascending) of `rowElems` elements, in every layer: eviction in place (modes that have it). */
  evict?(keep: readonly number[], rowElems: number): void;
}

/** Full precision: past rows exactly as computed. */
export class FullReferenceKv implements ReferenceKv {
  private k: Float32Array[];
  private v: Float32Array[];
  private used: number[];

  constructor(private readonly numLayers: number) {
    this.k = [];
    this.v = [];
    this.used = [];
    this.reset();
  }

  attend(layer: number, k: Float32Array, v: Float32Array): { k: Float32Array; v: Float32Array } {
    const at = this.used[layer];
    if (at + k.length > this.k[layer].length) {
      const cap = Math.max(at + k.length, 2 * this.k[layer].length);
      const grow = (old: Float32Array) => {
        const a = new Float32Array(cap);
        a.set(old.subarray(0, at));
        return a;
      };
      this.k[layer] = grow(this.k[layer]);
      this.v[layer] = grow(this.v[layer]);
    }
    this.k[layer].set(k, at);
    this.v[layer].set(v, at);
    this.used[layer] = at + k.length;
    return { k: this.k[layer].subarray(0, at + k.length), v: this.v[layer].subarray(0, at + k.length) };
  }

  evict(keep: readonly number[], rowElems: number): void {
    const pick = (a: Float32Array) => {
      const out = new Float32Array(a.length);
      keep.forEach((r, i) => out.set(a.subarray(r * rowElems, (r + 1) * rowElems), i * rowElems));
      return out;
    };
    for (let l = 0; l < this.numLayers; l++) {
      this.k[l] = pick(this.k[l]);
      this.v[l] = pick(this.v[l]);
      this.used[l] = keep.length * rowElems;
    }
  }

  reset(): void {
    this.k = Array.from({ length: this.numLayers }, () => new Float32Array(0));
    this.v = Array.from({ length: this.numLayers }, () => new Float32Array(0));
    this.used = new Array(this.numLayers).fill(0);
  }
}
