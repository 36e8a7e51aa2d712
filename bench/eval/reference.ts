/**
 * CPU reference back end of `npm run eval` (src/reference: the TypeScript model and KV-mode references the
 * kernel tests compare against). It runs the perplexity jobs of the Chromium subset, so the Node/Dawn vs
 * Chromium comparison has a third, GPU-free number: it shows which differences are back-end arithmetic.
 */
import path from 'node:path';
import { rowNll } from '../../src/engine/quality';
import type { KvShape } from '../../src/kv/types';
import { referenceKvFor } from '../../src/reference/kv-for-mode';
import { loadReferenceModel } from '../../src/reference/load-node';
import { EVAL_LOAD, type JobOutcome, type ModelJobs } from './jobs';

export const REFERENCE_BACKEND = 'cpu-reference';

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
        model.setKv(referenceKvFor(shape, job.task.kvMode));
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
