/**
 * The CPU reference model of one of our GGUF files, run two ways: with exact f32 activations (what our
 * kernels compute), and with the input of every product rounded the way llama.cpp's CPU back end rounds it
 * before its quantized dot products (each weight type's `vec_dot_type` in ggml-cpu: Q8_0 blocks for
 * Q4_0/Q5_0/Q8_0 weights, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, f16 for f16 weights; f32 stays f32).
 * If the second reproduces llama.cpp's ids, the disagreements of the first are that rounding, not our
 * dequantization. Used by bench/gguf-agreement.ts.
 */
import path from 'node:path';
import { tensorType, type GgufKind } from '../../scripts/gguf-models';
import type { GgmlTypeName } from '../../src/gpu/block-types';
import type { ModelConfig } from '../../src/model/config';
import { convertTensor, encodeTensorBytes } from '../../src/model/safetensors';
import { ReferenceModel, requiredTensorShapes } from '../../src/reference/forward';
import { dequantize, f16ToF32, f32ToF16 } from '../../src/reference/ggml-blocks';
import { quantize } from '../../src/reference/ggml-quantize';
import { loadReferenceModel } from '../../src/reference/load-node';
import type { EngineRun } from './agreement';

/** x rounded as ggml's quantize_row_q8_0_ref / q8_1 (per 32: d = amax/127 stored as f16, q = round(x/d)). */
function roundQ8_0(x: Float32Array, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32 && b + j < x.length; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const dh = f16ToF32(f32ToF16(d));
    for (let j = 0; j < 32 && b + j < x.length; j++) out[b + j] = Math.fround(Math.round(Math.abs(Math.fround(x[b + j] * id))) * Math.sign(x[b + j]) * dh);
  }
  void cols;
  return out;
}

/** Round half to even, as ggml's nearest_int. */
function nearestInt(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** x rounded as ggml's quantize_row_q8_K_ref (per 256: iscale = −127/max, q = min(127, nearest_int(iscale·x)), d = 1/iscale). */
function roundQ8_K(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 256) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 256; j++) {
      const ax = Math.abs(x[b + j]);
      if (ax > amax) {
        amax = ax;
        max = x[b + j];
      }
    }
    if (!amax) continue;
    const iscale = Math.fround(-127 / max);
    const d = Math.fround(1 / iscale);
    for (let j = 0; j < 256; j++) out[b + j] = Math.fround(Math.min(127, nearestInt(Math.fround(iscale * x[b + j]))) * d);
  }
  return out;
}

function roundF16(x: Float32Array): Float32Array {
  return convertTensor('F16', encodeTensorBytes('F16', x), 'f32') as Float32Array;
}

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
): { weights: Map<string, Float32Array>; types: Map<Float32Array, GgmlTypeName> } {
  const shapes = requiredTensorShapes(config);
  const types = new Map<Float32Array, GgmlTypeName>();
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
    if (type === 'f16' || type === 'bf16') w = roundF16(t);
    else if (type !== 'f32') {
      const t0 = performance.now();
      const bytes = quantize(type, t, rows, cols);
      onQuantize(type, t.length, performance.now() - t0);
      w = dequantize(type, bytes, rows, cols);
    }
    weights.set(name, w);
    types.set(w, type);
  }
  return { weights, types };
}

/** The weights of a GGUF kind as dequantized f32 (what both engines read), and each matrix's stored type. */
async function fileWeights(modelDir: string, kind: GgufKind) {
  const { config, tensors } = await loadReferenceModel(modelDir);
  const typeOf = (name: string, cols: number): GgmlTypeName => (kind === 'F32' ? 'f32' : tensorType(kind, name, cols, config.numLayers, config.tieEmbeddings));
  return { config, ...roundTripWeights(config, tensors, typeOf) };
}

/** llama.cpp's activation rounding for a product with a weight of `type`. */
function llamaRounding(types: Map<Float32Array, GgmlTypeName>) {
  return (x: Float32Array, w: Float32Array, cols: number): Float32Array => {
    const t = types.get(w) ?? 'f32';
    if (t === 'f32') return x;
    if (t === 'f16' || t === 'bf16') return roundF16(x);
    if (t === 'q4_k' || t === 'q5_k' || t === 'q6_k') return roundQ8_K(x);
    return roundQ8_0(x, cols);
  };
}

function argmax(l: Float32Array, o: number, v: number): number {
  let b = 0;
  for (let j = 1; j < v; j++) if (l[o + j] > l[o + b]) b = j;
  return b;
}

/** Greedy ids and teacher-forced top-1 of the CPU reference on a GGUF kind, with llama.cpp's activation rounding. */
export async function referenceWithLlamaRounding(modelsDir: string, model: string, kind: GgufKind, prompt: number[], greedyTokens: number, ids: number[]): Promise<EngineRun> {
  const { config, weights, types } = await fileWeights(path.join(modelsDir, model), kind);
  const V = config.vocabSize;
  const m = new ReferenceModel(config, weights, undefined, llamaRounding(types));
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
