import { describe, it } from 'vitest';
import { useLoadedEngine } from '../helpers/hub';
describe('repro', () => {
  const ctx = useLoadedEngine('local/stories260k', { weightDtype: 'f32', kvDtype: 'f32' });
  it('max tokens', async () => {
    for (let i = 0; i < 4; i++) {
      const p = { maxNewTokens: 120, temperature: 0, topP: 0.95, topK: 40, streamStats: i % 2 === 0 };
      const r = await ctx.engine.generate('Once upon a time', p, () => {});
      console.log('run', i, 'tokens', r.tokenIds.length, r.finishReason, 'held', ctx.engine.stats().tokensHeld);
    }
  });
});
