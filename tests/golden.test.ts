/**
 * Greedy generation through the engine reproduces the golden stories260k ids exactly (Node + Dawn).
 */
import { describe, expect, it } from 'vitest';
import { GOLDEN, useLoadedEngine } from './helpers/hub';

describe('golden greedy text, stories260k, f32', () => {
  const ctx = useLoadedEngine('local/stories260k', { weightDtype: 'f32', kvDtype: 'f32' });

  for (const golden of [GOLDEN.onceUponATime, GOLDEN.tomAndSue]) {
    it(`"${golden.prompt}"`, async () => {
      expect(ctx.engine.tokenizer!.encodeText(golden.prompt)).toEqual(golden.promptIds);
      const streamed: number[] = [];
      const result = await ctx.engine.generate(golden.prompt, { maxNewTokens: golden.ids.length }, (t) => streamed.push(t.tokenId));
      expect(result.tokenIds).toEqual(golden.ids);
      expect(streamed.filter((id) => id >= 0)).toEqual(golden.ids);
      expect(result.finishReason).toBe('length');
      expect(result.text).toBe(ctx.engine.tokenizer!.decode(golden.ids));
    });
  }

  it('a follow-up prompt that extends the last one reuses the cached prefix and still matches', async () => {
    const g = GOLDEN.onceUponATime;
    await ctx.engine.generate(g.prompt, { maxNewTokens: 10 });
    const before = ctx.engine.stats().tokensHeld;
    expect(before).toBe(g.promptIds.length + 9);
    const result = await ctx.engine.generate(g.prompt, { maxNewTokens: 20 });
    expect(result.tokenIds).toEqual(g.ids.slice(0, 20));
  });

  it('abort stops within one step', async () => {
    let seen = 0;
    const p = ctx.engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 200, stopAtEos: false }, () => {
      seen++;
      if (seen === 3) ctx.engine.abort();
    });
    const result = await p;
    expect(result.finishReason).toBe('abort');
    expect(result.tokenIds.length).toBe(3);
  });
});
