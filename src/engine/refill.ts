/**
 * Moving a conversation into a new cache (a mode switch mid-chat): every token the old cache held is prefilled
 * again into the new one at its own position, run by run, so evictions in place survive the switch.
 */
import type { KvCache } from '../kv/types';
import type { LlamaModel } from '../model/llama';
import type { CacheContents } from './cache-contents';

/**
 * Replace the model's cache with `next` and prefill the held tokens of `contents` into it, each run of
 * consecutive positions at those positions; the next position is then where it was. `contents` (which must
 * describe what the old cache held) is unchanged.
 */
export async function refillHeld(model: LlamaModel, next: KvCache, contents: CacheContents, onPrefill: (tokens: number) => void): Promise<void> {
  model.replaceKv(next);
  for (const run of contents.runs()) {
    next.truncate(next.length, run.start);
    for (let p = run.start; p < run.end; p += model.maxStepTokens) {
      const chunk = contents.ids.slice(p, Math.min(run.end, p + model.maxStepTokens));
      await model.forward(chunk, 'none');
      onPrefill(chunk.length);
    }
  }
  next.truncate(next.length, contents.nextPosition);
}
