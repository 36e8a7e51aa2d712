/**
 * The CPU reference model of one of our GGUF files, run two ways: with exact f32 activations (what our
 * kernels compute), and with the input of every product rounded the way llama.cpp's CPU back end rounds it
 * before its quantized dot products (each weight type's `vec_dot_type` in ggml-cpu: Q8_0 blocks for
 * Q4_0/Q5_0/Q8_0 weights, Q8_1 for Q4_1/Q5_1 (Q8_0's values, and the min term taken on each block's f16 sum:
 * q8_1SumCorrection), Q8_K for the K-quants, f16 for f16 weights; f32 stays f32).
 * If the second reproduces llama.cpp's ids, the disagreements of the first are that rounding, not our
 * dequantization. Used by bench/gguf-agreement.ts.
 */
import path from 'node:path';
import { tensorType, type GgufKind } from '../../scripts/gguf-models';
import { BLOCK, llamaInputRounding, type GgmlTypeName } from '../../src/gpu/block-types';
import type { ModelConfig } from '../../src/model/config';
import { ReferenceModel, requiredTensorShapes } from '../../src/reference/forward';
import { dequantize } from '../../src/reference/ggml-blocks';
import { quantize } from '../../src/reference/ggml-quantize';
import { q8_1SumDeltas, roundInput } from '../../src/reference/input-rounding';
import { f16ToF32 } from '../../src/reference/ggml-blocks';
import { loadReferenceModel } from '../../src/reference/load-node';
import type { EngineRun } from './agreement';

/** Per quantized matrix: its type, weights and the milliseconds `quantize` took (for timing). */
export type QuantizeHook = (type: GgmlTypeName, weights: number, ms: number) => void;

/**
 * f32 tensors as a file of the given per-matrix types holds them: each matrix quantized with the ggml reference
 * quantizer and dequantized (f16: rounded; f32: as is), vectors as they are; with each matrix's type.
 */
export function roundTripWeights(
  config: ModelConfig,
  tensors: Map<string, Float32Array>,
  typeOf: (name: string, cols: number) => GgmlTypeName,
  onQuantize: QuantizeHook = () => {},
): { weights: Map<string, Float32Array>; types: Map<Float32Array, GgmlTypeName>; mins: Map<Float32Array, Float32Array> } {
  const shapes = requiredTensorShapes(config);
  const types = new Map<Float32Array, GgmlTypeName>();
  const mins = new Map<Float32Array, Float32Array>();
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    const shape = shapes.get(name);
    if (!shape || shape.length === 1) {
      weights.set(name, t);
      continue;
    }
    const [rows, cols] = shape;
    const type = typeOf(name, cols);
    let w = t;
    if (type === 'f16' || type === 'bf16') w = roundInput(type, t, cols);
    else if (type !== 'f32') {
      const t0 = performance.now();
      const bytes = quantize(type, t, rows, cols);
      onQuantize(type, t.length, performance.now() - t0);
      w = dequantize(type, bytes, rows, cols);
      if (type === 'q4_1' || type === 'q5_1') mins.set(w, blockMins(bytes, BLOCK[type].bytes, rows * (cols / 32)));
    }
    weights.set(name, w);
    types.set(w, type);
  }
  return { weights, types, mins };
}

/** The f16 min m of each block of a q4_1 / q5_1 matrix (bytes 2..3 of each block), [rows, cols / 32]. */
export function blockMins(bytes: Uint8Array, blockBytes: number, blocks: number): Float32Array {
  const out = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) out[b] = f16ToF32(bytes[b * blockBytes + 2] | (bytes[b * blockBytes + 3] << 8));
  return out;
}

/**
 * llama.cpp's Q8_1 partner of q4_1/q5_1 weights also carries each block's sum s = f16(d · Σq) (d the f32 scale), and
 * its dot product takes the min term as m · s. The rounded input (q8_0's values) gives m · Σ x̃ instead; this adds
 * Σ_b m_b · (s_b − Σ_b x̃) to y [T, rows] so that the product is llama.cpp's.
 */
export function q8_1SumCorrection(mins: Map<Float32Array, Float32Array>) {
  return (y: Float32Array, x: Float32Array, w: Float32Array, rows: number, cols: number): void => {
    const m = mins.get(w);
    if (!m) return;
    const nb = cols / 32;
    const delta = q8_1SumDeltas(x);
    for (let t = 0; t < x.length / cols; t++) {
      for (let r = 0; r < rows; r++) {
        let c = 0;
        for (let b = 0; b < nb; b++) c += m[r * nb + b] * delta[t * nb + b];
        y[t * rows + r] = Math.fround(y[t * rows + r] + c);
      }
    }
  };
}

/** The weights of a GGUF kind as dequantized f32 (what both engines read), and each matrix's stored type. */
async function fileWeights(modelDir: string, kind: GgufKind, only?: RegExp) {
  const { config, tensors } = await loadReferenceModel(modelDir);
  const typeOf = (name: string, cols: number): GgmlTypeName => (kind === 'F32' ? 'f32' : tensorType(kind, name, cols, config.numLayers, config.tieEmbeddings, only));
  return { config, ...roundTripWeights(config, tensors, typeOf) };
}

/** llama.cpp's activation rounding for a product with a weight of `type` (src/reference/input-rounding.ts, as our kernels). */
function llamaRounding(types: Map<Float32Array, GgmlTypeName>) {
  return (x: Float32Array, w: Float32Array, cols: number): Float32Array => {
    const rounding = llamaInputRounding(types.get(w) ?? 'f32');
    return rounding ? roundInput(rounding, x, cols) : x;
  };
}

function argmax(l: Float32Array, o: number, v: number): number {
  let b = 0;
  for (let j = 1; j < v; j++) if (l[o + j] > l[o + b]) b = j;
  return b;
}

/** Greedy ids and teacher-forced top-1 of the CPU reference on a GGUF kind, with llama.cpp's activation rounding. */
export async function referenceWithLlamaRounding(modelsDir: string, model: string, kind: GgufKind, prompt: number[], greedyTokens: number, ids: number[]): Promise<EngineRun> {
  const m = await referenceModelWithLlamaRounding(modelsDir, model, kind);
  const V = m.config.vocabSize;
  const tf = m.forward(ids);
  const top1 = Array.from({ length: ids.length }, (_, r) => argmax(tf, r * V, V));
  m.reset();
  let logits = m.forward(prompt);
  const greedy: number[] = [];
  while (greedy.length < greedyTokens) {
    const next = argmax(logits, logits.length - V, V);
    greedy.push(next);
    logits = m.forward([next]);
  }
  return { greedy, top1 };
}

/** The CPU reference on a GGUF kind's weights (matrices outside `only` f32) with llama.cpp's rounding and Q8_1 min term. */
export async function referenceModelWithLlamaRounding(modelsDir: string, model: string, kind: GgufKind, only?: RegExp): Promise<ReferenceModel> {
  const { config, weights, types, mins } = await fileWeights(path.join(modelsDir, model), kind, only);
  return new ReferenceModel(config, weights, undefined, llamaRounding(types), q8_1SumCorrection(mins));
}
