/**
 * Dispatches per decode step (issue: ≤ 8 per layer in `full`), and compressed layouts dispatch their flush
 * kernels only on the steps that flush (stories260k, 5 layers; Node + Dawn).
 */
import { describe, expect, it } from 'vitest';
import { BENCH_KV_MODES } from '../../src/engine/benchmark';
import { useLoadedEngine } from '../helpers/hub';

describe('dispatches per decode step', () => {
  const ctx = useLoadedEngine('local/stories260k', { weightDtype: 'f32', kvDtype: 'f32' });

  it('full: at most 8 per layer plus embedding, LM head and argmax', async () => {
    const counts = await ctx.engine.dispatchCounts(BENCH_KV_MODES, 256);
    const layers = ctx.engine.model!.config.numLayers;
    const full = counts.find((c) => c.kvMode === 'full')!;
    expect(full.dispatchesPerStep).toBeLessThanOrEqual(8 * layers + 3);
    for (const c of counts) expect(c.dispatchesPerStep, c.kvMode).toBeGreaterThanOrEqual(full.dispatchesPerStep);
  });

  it('kivi: the key flush passes run only on the steps that complete a key block', async () => {
    const engine = ctx.engine;
    await engine.setKvMode({ mode: 'kivi', bits: 2, groupSize: 8, residual: 16 });
    const model = engine.model!;
    try {
      model.kv.reset();
      const ids = Array.from({ length: 40 }, (_, i) => 3 + i);
      // 31 tokens: the next step (position 31 → 32 held) completes a 16-token key block.
      await model.forward(ids.slice(0, 31), 'none');
      const atFlush = model.dispatchesPerStep(1);
      await model.forward([ids[31]], 'token');
      const between = model.dispatchesPerStep(1);
      // Keys: scales_channel + pack_codes skipped per layer; values still flush (FIFO) every step.
      expect(atFlush - between).toBe(2 * model.config.numLayers);
    } finally {
      model.kv.reset();
      await engine.setKvMode({ mode: 'full' });
    }
  });
});
