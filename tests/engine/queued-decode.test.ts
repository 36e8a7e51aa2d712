/**
 * Queued greedy decoding (LlamaModel.decodeGreedy, used by the generate loop on caches that can roll back):
 * the GPU feeds each step's argmax to the next step, and a stop seen late is rolled back so the cache holds
 * exactly what the one-step loop would have left (Node + Dawn, stories260k golden ids).
 */
import { describe, expect, it } from 'vitest';
import { queuedDecodeSteps } from '../../src/engine/generation';
import { GOLDEN, useLoadedEngine } from '../helpers/hub';

describe('queued greedy decode', () => {
  const ctx = useLoadedEngine('local/stories260k', { weightDtype: 'f32', kvDtype: 'f32' });
  const g = GOLDEN.onceUponATime;

  it('decodeGreedy gives the golden ids, with every fed token in the cache', async () => {
    const model = ctx.engine.model!;
    model.kv.reset();
    const first = await model.forward(g.promptIds, 'token');
    expect(first.nextToken).toBe(g.ids[0]);
    const ahead = await model.decodeGreedy(first.nextToken, 16);
    expect(ahead).toEqual(g.ids.slice(1, 17));
    expect(model.kv.length).toBe(g.promptIds.length + 16);
    model.kv.reset();
  });

  it('a stop string inside a queued batch: the cache is cut back, and the next turn still matches', async () => {
    // "Lily" ends at a token in the middle of a batch of queued steps.
    const result = await ctx.engine.generate(g.prompt, { maxNewTokens: 60, stop: ['Lily'] });
    expect(result.finishReason).toBe('stop');
    const n = result.tokenIds.length;
    expect(n % queuedDecodeSteps(ctx.engine.model!)).not.toBe(1);
    expect(result.tokenIds).toEqual(g.ids.slice(0, n));
    // As the one-step loop: the prompt and every generated token but the last (it was never fed).
    expect(ctx.engine.stats().tokensHeld).toBe(g.promptIds.length + n - 1);
    const again = await ctx.engine.generate(g.prompt, { maxNewTokens: 60 });
    expect(again.tokenIds).toEqual(g.ids);
  });

  it('maxNewTokens that is not a multiple of the batch', async () => {
    for (const max of [1, 2, queuedDecodeSteps(ctx.engine.model!) + 3]) {
      const result = await ctx.engine.generate(g.prompt, { maxNewTokens: max });
      expect(result.tokenIds).toEqual(g.ids.slice(0, max));
      expect(ctx.engine.stats().tokensHeld).toBe(g.promptIds.length + max - 1);
    }
  });
});
