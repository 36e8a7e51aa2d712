/**
 * On-load quantization of safetensors weights through the engine (Node + Dawn): q8 and q4 (the Q4_K_M-style
 * mix) allocate the block bytes they should (never an f16 copy), q8 keeps stories260k's golden greedy text, a weight memory limit makes
 * `auto` quantize with a notice, and an explicit choice over the limit is a named error that leaves the
 * engine usable.
 */
import { describe, expect, it } from 'vitest';
import { GpuOutOfMemoryError } from '../../src/errors';
import { GOLDEN, hubSpec, nodeEngine, startTestHub } from '../helpers/hub';

describe('on-load weight quantization', () => {
  it('q8 / q4 / limits on stories260k', async () => {
    const hub = await startTestHub();
    const engine = nodeEngine();
    try {
      const spec = hubSpec(hub, 'local/stories260k');
      const f32 = await engine.load(spec, { weightDtype: 'f32', kvDtype: 'f32' });
      const q8 = await engine.load(spec, { weightDtype: 'q8', kvDtype: 'f32' });
      // 64-wide rows (embeddings, q/k/v/o, gate/up: 237,056 weights) become blocks; down_proj's 172-wide rows and
      // the norms stay float (f16 where the adapter has it).
      expect(q8.weightDtype).toMatch(/^q8_0\+f(16|32)$/);
      expect(engine.stats().weightBytes).toBe(q8.weightBytes);
      const g = GOLDEN.onceUponATime;
      expect((await engine.generate(g.prompt, { maxNewTokens: g.ids.length })).tokenIds).toEqual(g.ids);

      // q4, llama.cpp's Q4_K_M choice of matrices with 4-bit fallbacks: lm_head and v_proj of layers 2 and 4
      // (36,864 weights, 64-wide rows: not whole 256-blocks) are Q5_0 (22 bytes per 32), the rest Q4_0 (18).
      const q4 = await engine.load(spec, { weightDtype: 'q4', kvDtype: 'f32' });
      expect(q4.weightDtype.split('+').sort()).toEqual([expect.stringMatching(/^f(16|32)$/), 'q4_0', 'q5_0']);
      expect(q8.weightBytes - q4.weightBytes).toBe((237_056 / 32) * (34 - 18) - (36_864 / 32) * (22 - 18));
      expect(f32.weightBytes - 237_056 * 4).toBeGreaterThan(0);
      const text = (await engine.generate(g.prompt, { maxNewTokens: 20 })).text;
      expect(text.length).toBeGreaterThan(20);

      const auto = await engine.load(spec, { weightDtype: 'auto', kvDtype: 'f32' });
      expect(auto.weightNotice).toBeUndefined();
      const limit = Math.floor(auto.weightBytes * 0.8);
      const limited = await engine.load(spec, { weightDtype: 'auto', kvDtype: 'f32', weightBudgetBytes: limit });
      expect(limited.weightNotice).toMatch(/quantized to q8/);
      expect(limited.weightBytes).toBeLessThanOrEqual(limit);

      const err = await engine.load(spec, { weightDtype: 'f32', kvDtype: 'f32', weightBudgetBytes: limit }).then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(GpuOutOfMemoryError);
      expect(err!.message).toMatch(/over the .* set for weights\. (Choose q|Even q4)/);
      await engine.load(spec, { weightDtype: 'f32', kvDtype: 'f32' });
      expect((await engine.generate(g.prompt, { maxNewTokens: 10 })).tokenIds).toEqual(g.ids.slice(0, 10));
    } finally {
      await engine.unload();
      await hub.close();
    }
  }, 120_000);
});
