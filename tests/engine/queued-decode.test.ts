/**
 * Queued greedy decoding (LlamaModel.decodeGreedy / queueGreedy, used by the generate loop on caches that can
 * roll back): the GPU feeds each step's argmax to the next step, the loop queues the next batch before it reads
 * the last one, and a stop seen late is rolled back so the cache holds exactly what the one-step loop would
 * have left (Node + Dawn, stories260k golden ids).
 */
import { describe, expect, it } from 'vitest';
import { FUSED_RAMP_TOKENS, queuedDecodeSteps } from '../../src/engine/generation';
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

  it('batches queued while the one before is read: a late stop and odd limits leave the cache as the one-step loop', async () => {
    const engine = ctx.engine;
    const model = engine.model!;
    const firsts: Array<number | null> = [];
    const queue = model.queueGreedy.bind(model);
    model.queueGreedy = (first, steps) => {
      firsts.push(first);
      return queue(first, steps);
    };
    try {
      // The first reply grows the cache on the way (a batch that needs growth is not queued ahead); the second
      // finds the room, and all its batches but the first are queued from the GPU's last token (null) before
      // the CPU read the one before.
      const long = await engine.generate(g.prompt, { maxNewTokens: 200 });
      expect(long.tokenIds.slice(0, g.ids.length)).toEqual(g.ids);
      firsts.length = 0;
      expect((await engine.generate(g.prompt, { maxNewTokens: 200 })).tokenIds).toEqual(long.tokenIds);
      expect(firsts.length).toBeGreaterThan(4);
      expect(firsts.slice(1).every((f) => f === null)).toBe(true);
      // A stop string that ends around token 130 (past the ramp, inside a 32-step batch, another one queued).
      const tok = engine.tokenizer!;
      let k = 130;
      let stop = '';
      for (; k < 190; k++) {
        stop = tok.decode(long.tokenIds.slice(0, k)).slice(-7);
        if (stop.trim().length >= 5 && long.text.indexOf(stop) === tok.decode(long.tokenIds.slice(0, k)).length - 7) break;
      }
      const stopped = await engine.generate(g.prompt, { maxNewTokens: 200, stop: [stop] });
      expect(stopped.finishReason).toBe('stop');
      const n = stopped.tokenIds.length;
      expect(n).toBe(k);
      expect(stopped.tokenIds).toEqual(long.tokenIds.slice(0, n));
      expect(engine.stats().tokensHeld).toBe(g.promptIds.length + n - 1);
      for (const max of [FUSED_RAMP_TOKENS + 1, FUSED_RAMP_TOKENS + queuedDecodeSteps(model) + 5]) {
        const r = await engine.generate(g.prompt, { maxNewTokens: max });
        expect(r.tokenIds).toEqual(long.tokenIds.slice(0, max));
        expect(engine.stats().tokensHeld).toBe(g.promptIds.length + max - 1);
      }
      expect((await engine.generate(g.prompt, { maxNewTokens: 60 })).tokenIds).toEqual(g.ids);
    } finally {
      model.queueGreedy = queue;
    }
  });

  it('maxNewTokens that is not a multiple of the batch', async () => {
    for (const max of [1, 2, queuedDecodeSteps(ctx.engine.model!) + 3]) {
      const result = await ctx.engine.generate(g.prompt, { maxNewTokens: max });
      expect(result.tokenIds).toEqual(g.ids.slice(0, max));
      expect(ctx.engine.stats().tokensHeld).toBe(g.promptIds.length + max - 1);
    }
  });
});
