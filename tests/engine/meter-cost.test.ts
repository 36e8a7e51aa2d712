/**
 * What the live cache meter costs the engine per token: GenerateParams.streamStats makes the worker call
 * stats() and send the result with every TokenEvent (postMessage structured-clones it). Measured here as
 * stats() + structuredClone per call, against the decode time per token of the same model (Node + Dawn),
 * for a small (5-layer) and a 12-layer model. The bar: the meter may slow generation by at most 2%.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine';
import { useLoadedEngine } from '../helpers/hub';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Microseconds per stats() + structuredClone, median of batches. */
function statsCostMicros(engine: Engine): number {
  const batches: number[] = [];
  for (let b = 0; b < 7; b++) {
    const n = 500;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) structuredClone({ tokenId: 1, text: 'x', index: i, stats: engine.stats() });
    batches.push(((performance.now() - t0) * 1000) / n);
  }
  return median(batches);
}

describe.each(['local/stories260k', 'local/byte-llama-12l'])('live meter cost, %s', (repo) => {
  const ctx = useLoadedEngine(repo, { weightDtype: 'f32', kvDtype: 'f32' });

  it('stats per token cost under 2% of a decode step', async () => {
    await ctx.engine.setKvMode({ mode: 'kivi', bits: 2 }); // more components per layer than full
    const decodeTps: Record<'on' | 'off', number[]> = { on: [], off: [] };
    for (let i = 0; i < 6; i++) {
      const on = i % 2 === 0;
      let clones = 0;
      const r = await ctx.engine.generate('Once upon a time', { maxNewTokens: 48, stopAtEos: false, streamStats: on }, (t) => {
        structuredClone(t); // what comlink's postMessage does with each event
        if (t.stats) clones++;
      });
      if (on) expect(clones).toBe(48);
      decodeTps[on ? 'on' : 'off'].push(r.decodeTokensPerSecond);
    }
    const micros = statsCostMicros(ctx.engine);
    const decodeMicros = 1e6 / median(decodeTps.off);
    const percent = (100 * micros) / decodeMicros;
    console.log(
      `[meter-cost] ${repo}: stats()+clone ${micros.toFixed(1)} µs per token; decode ${(decodeMicros / 1000).toFixed(2)} ms per token ` +
        `→ ${percent.toFixed(3)}%; decode tok/s median on ${median(decodeTps.on).toFixed(1)} vs off ${median(decodeTps.off).toFixed(1)} ` +
        `(runs on ${decodeTps.on.map((x) => x.toFixed(1)).join('/')}, off ${decodeTps.off.map((x) => x.toFixed(1)).join('/')})`,
    );
    expect(percent).toBeLessThan(2);
  });
});
