/**
 * The golden stories260k text, exact, from the shared GGUF v3 and v1 files (config, tokenizer and weights all
 * from the file, q/k rows moved back from GGUF's interleaved order) through the engine on Node + Dawn.
 */
import { describe, expect, it } from 'vitest';
import { GOLDEN, useLoadedEngine } from './helpers/hub';

for (const file of ['stories260k-f32-v3.gguf', 'stories260k-f32-ggufv1.gguf']) {
  describe(`golden greedy text from ${file}`, () => {
    const ctx = useLoadedEngine('local/stories260k', { weightDtype: 'f32', kvDtype: 'f32', file });

    it('reports a GGUF model of f32 weights', () => {
      expect(ctx.engine.stats().weightBytes).toBeGreaterThan(0);
    });

    for (const golden of [GOLDEN.onceUponATime, GOLDEN.tomAndSue]) {
      it(`"${golden.prompt}"`, async () => {
        expect(ctx.engine.tokenizer!.encodeText(golden.prompt)).toEqual(golden.promptIds);
        const result = await ctx.engine.generate(golden.prompt, { maxNewTokens: golden.ids.length });
        expect(result.tokenIds).toEqual(golden.ids);
        expect(result.text).toBe(ctx.engine.tokenizer!.decode(golden.ids));
      });
    }
  });
}
