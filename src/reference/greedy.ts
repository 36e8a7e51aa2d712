/** Greedy decoding on the CPU reference model. */
import { argmax } from './kernels';
import type { ReferenceModel } from './forward';

/**
 * Feed `promptIds` after whatever the model has cached, then pick the argmax token `n` times.
 * Returns the `n` new ids. Call `model.reset()` first to start from an empty context.
 */
export function greedyGenerate(model: ReferenceModel, promptIds: number[], n: number): number[] {
  const V = model.config.vocabSize;
  const out: number[] = [];
  if (n <= 0) return out;
  let logits = model.forward(promptIds);
  let last = logits.subarray(logits.length - V);
  for (;;) {
    const id = argmax(last);
    out.push(id);
    if (out.length === n) return out;
    logits = model.forward([id]);
    last = logits;
  }
}
