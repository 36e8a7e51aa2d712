/**
 * llama.cpp's min term for q4_1 / q5_1 weights (shaders/min_term.wgsl): its Q8_1 input keeps each block's sum
 * s = f16(d · Σq), and the weights' min m multiplies that sum, not the rounded values'. The Q8_1 rounding
 * (input-rounding.ts) writes s − Σ (rounded block) per block into a scratch buffer of the recording; each product
 * over that input then adds Σ_b m_b · (s_b − Σ_b) to its outputs.
 */
import { BLOCK } from '../gpu/block-types';
import type { Recorder } from '../gpu/plan';
import type { WeightMatrix } from '../gpu/tensor';

/** The block-sum scratch of each recording: f32 [T, K / 32] of the last Q8_1 rounding. */
const sums = new WeakMap<Recorder, GPUBuffer>();

/** The recording's block-sum scratch, at least `blocks` f32 long (a larger one replaces it for later roundings). */
export function q8_1Sums(rec: Recorder, blocks: number): GPUBuffer {
  const have = sums.get(rec);
  if (have && have.size >= blocks * 4) return have;
  const buffer = rec.owner.create('q8_1 block sums', Math.max(blocks, 1) * 4);
  sums.set(rec, buffer);
  return buffer;
}

/**
 * y[t, colStart + r] += Σ_b m[r, b] · sums[t, b] for a weight whose input was rounded as Q8_1 (w.inputRounding),
 * after its product into y (f32 [T, nTotal]); one dispatch per row part.
 */
export function addMinTerm(rec: Recorder, w: WeightMatrix, y: GPUBuffer, tokens: number, colStart: number, nTotal: number): void {
  if (w.inputRounding !== 'q8_1') return;
  const scratch = sums.get(rec);
  if ((w.dtype !== 'q4_1' && w.dtype !== 'q5_1') || !scratch) throw new Error(`min term of ${w.name}: a q4_1 / q5_1 weight after a Q8_1 rounding is needed`);
  const blockBytes = BLOCK[w.dtype].bytes;
  const pipeline = rec.pipelines.get({ shader: 'min_term', variant: rec.variant });
  for (const part of w.parts) {
    const params = rec.uniforms.struct({ tokens, k: w.cols, rows: part.rows, col_start: colStart + part.rowStart, n_total: nTotal, block_bytes: blockBytes });
    rec.dispatch(`min_term ${w.name}`, pipeline, { 0: params, 1: part.buffer, 2: scratch, 3: y }, [Math.ceil(part.rows / 64), tokens, 1]);
  }
}
