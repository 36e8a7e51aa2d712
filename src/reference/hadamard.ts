/**
 * CPU reference of the randomized Hadamard rotation (shaders/hadamard.wgsl, docs/kv-compression.md §5): per row
 * of head_dim, forward y = H·D·x / √n and inverse x = D·H·y / √n, with D the ±1 signs of the row's KV head and H
 * the Walsh–Hadamard matrix of size n (the largest power of two dividing head_dim; block-diagonal otherwise).
 * The butterflies run in f32 in the kernel's order, so the rotated rows equal the GPU's to the last bit or so.
 */
import { mulberry32 } from './mulberry32';

/** The seed of the sign vectors every rotated cache uses (one basis for every layer and every run). */
export const ROTATION_SEED = 0x5eed_4ad;

/** n: the largest power of two dividing headDim, the size of each Hadamard block. */
export function hadamardBlock(headDim: number): number {
  if (!Number.isInteger(headDim) || headDim < 1) throw new RangeError(`head_dim must be a positive integer, got ${headDim}.`);
  return headDim & -headDim;
}

/** ±1 signs f32 [kvHeads, headDim] drawn from mulberry32(seed), KV head by KV head. */
export function rotationSigns(kvHeads: number, headDim: number, seed = ROTATION_SEED): Float32Array {
  const next = mulberry32(seed);
  const signs = new Float32Array(kvHeads * headDim);
  for (let i = 0; i < signs.length; i++) signs[i] = next() < 0.5 ? -1 : 1;
  return signs;
}

/** The heads of a tensor and which sign vector each uses: head h of `heads` takes KV head h / (heads / kvHeads). */
export interface RotationShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * Rotate rows x: f32 [T, heads, headDim] in place, forward (H·D·x/√n) or inverse (D·H·x/√n), with signs
 * f32 [kvHeads, headDim]. Returns x.
 */
export function hadamardRotate(x: Float32Array, shape: RotationShape, signs: Float32Array, direction: 'forward' | 'inverse'): Float32Array {
  const { heads, kvHeads, headDim: d } = shape;
  if (heads % kvHeads !== 0) throw new RangeError(`heads ${heads} are not a multiple of KV heads ${kvHeads}.`);
  if (x.length % (heads * d) !== 0) throw new RangeError(`rows of ${x.length} values are not a multiple of heads × head_dim = ${heads * d}.`);
  if (signs.length !== kvHeads * d) throw new RangeError(`signs hold ${signs.length} values, expected ${kvHeads * d}.`);
  const n = hadamardBlock(d);
  const scale = Math.fround(1 / Math.sqrt(n));
  const group = heads / kvHeads;
  const s = new Float32Array(d);
  for (let r = 0; r < x.length / d; r++) {
    const base = r * d;
    const sign = Math.floor((r % heads) / group) * d;
    for (let i = 0; i < d; i++) s[i] = direction === 'forward' ? x[base + i] * signs[sign + i] : x[base + i];
    for (let h = 1; h < n; h <<= 1) {
      for (let j = 0; j < d / 2; j++) {
        const i = Math.floor(j / h) * 2 * h + (j % h);
        const a = s[i];
        const b = s[i + h];
        s[i] = a + b; // Float32Array stores round to f32, as the kernel's workgroup memory does
        s[i + h] = a - b;
      }
    }
    for (let i = 0; i < d; i++) x[base + i] = direction === 'forward' ? s[i] * scale : Math.fround(s[i] * scale) * signs[sign + i];
  }
  return x;
}
