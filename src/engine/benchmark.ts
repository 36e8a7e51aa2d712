/**
 * Speed measurement shared by the Node benchmark and the in-browser one (run inside the worker):
 * prefill tokens/s for an N-token prompt, and decode tokens/s for the steps that end at position N.
 */
import type { LlamaModel } from '../model/llama';
import type { SpeedRow } from '../worker/api';


const now = () => performance.now();

/** Deterministic token ids in [3, vocab) to feed the model. */
export function benchmarkTokens(n: number, vocab: number, seed = 7): number[] {
  const out: number[] = [];
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out.push(3 + (s % Math.max(1, vocab - 3)));
  }
  return out;
}

async function prefill(model: LlamaModel, ids: number[], readLast: boolean): Promise<void> {
  for (let i = 0; i < ids.length; i += model.maxStepTokens) {
    const chunk = ids.slice(i, i + model.maxStepTokens);
    const last = i + chunk.length >= ids.length;
    await model.forward(chunk, last && readLast ? 'token' : 'none');
  }
  await model.sync();
}

/** Measure prefill and decode speed at each context length. The cache is reset before and after. */
export async function measureSpeed(model: LlamaModel, contexts: number[], decodeTokens: number): Promise<SpeedRow[]> {
  const rows: SpeedRow[] = [];
  const vocab = model.config.vocabSize;
  // Warm-up: compile every pipeline the measured steps use.
  model.kv.reset();
  await prefill(model, benchmarkTokens(Math.min(model.maxStepTokens + 1, model.config.maxPositions - 1), vocab), true);
  for (const context of contexts) {
    const ids = benchmarkTokens(context, vocab);
    model.kv.reset();
    const t0 = now();
    await prefill(model, ids, true);
    const prefillMs = now() - t0;

    const steps = Math.min(decodeTokens, context - 1);
    model.kv.reset();
    await prefill(model, ids.slice(0, context - steps), true);
    const t1 = now();
    for (let i = context - steps; i < context; i++) await model.forward([ids[i]], 'token');
    const decodeMs = now() - t1;
    rows.push({
      context,
      prefillMs,
      decodeMs,
      decodeTokens: steps,
      prefillTokensPerSecond: (context * 1000) / prefillMs,
      decodeTokensPerSecond: (steps * 1000) / decodeMs,
    });
  }
  model.kv.reset();
  return rows;
}
