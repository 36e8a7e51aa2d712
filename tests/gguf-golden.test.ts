/**
 * The golden stories260k text, exact, from the shared GGUF v3 and v1 files (config, tokenizer and weights all
 * from the file, q/k rows moved back from GGUF's interleaved order) through the engine on Node + Dawn.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureGguf, ggufFileName } from '../scripts/gguf-models';
import { startHubServer } from '../scripts/hub-server';
import { GOLDEN, nodeEngine, useLoadedEngine } from './helpers/hub';

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

describe('a BF16 GGUF file', () => {
  it('plans and loads its bf16 tensors as floats (converted on load, not as blocks)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-bf16-'));
    const hub = await startHubServer({ repos: { 'local/stories260k': path.join(dir, 'stories260k') } });
    const engine = nodeEngine();
    try {
      await ensureGguf(dir, 'stories260k', 'BF16');
      const info = await engine.load({ kind: 'hub', repo: 'local/stories260k', baseUrl: hub.baseUrl, file: ggufFileName('stories260k', 'BF16') }, { weightDtype: 'f32', kvDtype: 'f32', weightBudgetBytes: 2 ** 30 });
      expect(info.weightDtype).toBe('f32');
      expect((await engine.generate(GOLDEN.onceUponATime.prompt, { maxNewTokens: 8 })).tokenIds).toHaveLength(8);
    } finally {
      await engine.unload();
      await hub.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
