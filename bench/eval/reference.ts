/**
 * CPU reference back end of `npm run eval` (src/reference: the TypeScript model and KV-mode references the
 * kernel tests compare against). It runs the perplexity jobs of the Chromium subset, so the Node/Dawn vs
 * Chromium comparison has a third, GPU-free number: it shows which differences are back-end arithmetic.
 */
import path from 'node:path';
import { mergeOptionsFor, quantFormatFor, zipFormatFor } from '../../src/kv/factory';
import type { KvShape } from '../../src/kv/types';
import { MergeReferenceKv } from '../../src/reference/kv-merge';
import { QuantReferenceKv } from '../../src/reference/kv-quant';
import { FullReferenceKv, type ReferenceKv } from '../../src/reference/kv-reference';
import { ZipReferenceKv } from '../../src/reference/kv-zip';
import { loadReferenceModel } from '../../src/reference/load-node';
import type { KvModeSpec } from '../../src/worker/api';
import { EVAL_LOAD, type JobOutcome, type ModelJobs } from './jobs';

export const REFERENCE_BACKEND = 'cpu-reference';

/** The reference cache for a spec, from the same parameters the GPU cache uses (as in tests/kv/modes-forward.test.ts). */
function referenceKv(shape: KvShape, spec: KvModeSpec): ReferenceKv {
  switch (spec.mode) {
    case 'full':
      return new FullReferenceKv(shape.numLayers);
    case 'int8':
    case 'kivi':
      return new QuantReferenceKv(shape.numLayers, quantFormatFor(shape, spec));
    case 'merge':
    case 'merge+kivi': {
      const base = (n: number): ReferenceKv =>
        spec.mode === 'merge' ? new FullReferenceKv(n) : new QuantReferenceKv(n, quantFormatFor(shape, { ...spec, mode: 'kivi', bits: spec.bits ?? 2 }));
      return new MergeReferenceKv(shape.numLayers, shape.numKvHeads, shape.headDim, mergeOptionsFor(shape, spec), base);
    }
    case 'zip':
      return new ZipReferenceKv(shape.numLayers, zipFormatFor(shape, spec), shape.numHeads);
  }
}

/** −log softmax(logits)[target] of one row, in f64. */
function rowNll(logits: Float32Array, offset: number, vocab: number, target: number): number {
  let max = -Infinity;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(logits[offset + j] - max);
  return Math.log(sum) + max - logits[offset + target];
}

/** Run the perplexity jobs of `plan` on the CPU reference, in steps of the eval's prefill chunk. */
export async function runReference(modelsDir: string, plan: ModelJobs[], onOutcome: (o: JobOutcome) => void): Promise<JobOutcome[]> {
  const step = EVAL_LOAD.prefillChunk ?? 64;
  const outcomes: JobOutcome[] = [];
  for (const { model: name, jobs } of plan) {
    const perplexityJobs = jobs.filter((j) => j.task.kind === 'perplexity');
    if (!perplexityJobs.length) continue;
    const { config, model } = await loadReferenceModel(path.join(modelsDir, name));
    const shape: KvShape = { numLayers: config.numLayers, numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim, maxTokens: config.maxPositions, maxStepTokens: step };
    for (const job of perplexityJobs) {
      if (job.task.kind !== 'perplexity') continue;
      const out: JobOutcome = { id: job.id, model: name, backend: REFERENCE_BACKEND };
      try {
        const t0 = performance.now();
        const ids = job.task.ids;
        const n = ids.length - 1;
        model.setKv(referenceKv(shape, job.task.kvMode));
        let nll = 0;
        for (let p0 = 0; p0 < n; p0 += step) {
          const chunk = ids.slice(p0, Math.min(n, p0 + step));
          const logits = model.forward(chunk);
          for (let r = 0; r < chunk.length; r++) nll += rowNll(logits, r * config.vocabSize, config.vocabSize, ids[p0 + r + 1]);
        }
        const kv = { tokens: n, kvBytes: 0, fp16Bytes: 0, components: {} };
        out.result = { kind: 'perplexity', tokens: n, predicted: n, nll: nll / n, ppl: Math.exp(nll / n), ms: performance.now() - t0, kv };
      } catch (err) {
        out.error = `${(err as Error).name}: ${(err as Error).message}`;
      }
      outcomes.push(out);
      onOutcome(out);
    }
  }
  return outcomes;
}
