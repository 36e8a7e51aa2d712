/**
 * Each compressed KV mode end to end on stories260k: GPU logits at every position (chunked prefill with
 * flushes, then decode) against the CPU reference model run with the same cache mode; exact byte
 * accounting against the real buffers and the doc's formulas; and a mid-chat mode switch.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubServer } from '../../scripts/hub-server';
import type { Engine } from '../../src/engine/engine';
import { quantFormatFor } from '../../src/kv/factory';
import { formulaLayerBytes } from '../../src/kv/quant-format';
import type { QuantKvCache } from '../../src/kv/quant-cache';
import { QuantReferenceKv } from '../../src/reference/kv-quant';
import { FullReferenceKv } from '../../src/reference/kv-reference';
import { loadReferenceModel } from '../../src/reference/load-node';
import type { KvModeSpec } from '../../src/worker/api';
import { GOLDEN, hubSpec, nodeEngine, sharedModel, startTestHub } from '../helpers/hub';

const MODES: Array<{ spec: Extract<KvModeSpec, { mode: 'int8' | 'kivi' }>; tolerance: number }> = [
  { spec: { mode: 'int8' }, tolerance: 1e-3 },
  { spec: { mode: 'int8', groupSize: 16, residual: 16 }, tolerance: 1e-3 },
  { spec: { mode: 'kivi', bits: 4 }, tolerance: 1e-3 },
  { spec: { mode: 'kivi', bits: 2, groupSize: 16, residual: 32 }, tolerance: 1e-3 },
];
const PREFILL = [48, 48, 48, 48, 7];
const DECODE = 12;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('compressed KV modes on stories260k', () => {
  let hub: HubServer;
  let engine: Engine;
  let ref: Awaited<ReturnType<typeof loadReferenceModel>>;
  let tokens: number[];
  const vocab = 512;

  beforeAll(async () => {
    hub = await startTestHub();
    engine = nodeEngine();
    ref = await loadReferenceModel(sharedModel('stories260k'));
    await engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32', allLogits: true, prefillChunk: 48 });
    const text = fs.readFileSync(path.join(sharedModel('stories260k'), '..', '..', 'eval', 'dracula.txt'), 'utf8').slice(5000, 9000);
    tokens = engine.tokenizer!.encodeText(text + text).slice(0, PREFILL.reduce((a, b) => a + b, 0) + DECODE);
  });
  afterAll(async () => {
    await engine.unload();
    await hub.close();
  });

  for (const { spec, tolerance } of MODES) {
    it(`${JSON.stringify(spec)}: logits match the reference run in the same mode`, async () => {
      await engine.setKvMode(spec);
      const model = engine.model!;
      model.kv.reset();
      const f = quantFormatFor({ ...shapeOf(engine), maxTokens: 512 }, spec);
      ref.model.setKv(new QuantReferenceKv(ref.config.numLayers, f));
      const full = await loadReferenceModel(sharedModel('stories260k'));
      full.model.setKv(new FullReferenceKv(ref.config.numLayers));
      let worst = 0;
      let vsFull = 0;
      let pos = 0;
      const steps = [...PREFILL, ...new Array(DECODE).fill(1)];
      for (const size of steps) {
        const chunk = tokens.slice(pos, pos + size);
        const { logits } = await model.forward(chunk, size > 1 ? 'all-logits' : 'last-logits');
        const want = ref.model.forward(chunk);
        const exact = full.model.forward(chunk);
        worst = Math.max(worst, maxAbsDiff(logits!, want));
        vsFull = Math.max(vsFull, maxAbsDiff(logits!, exact));
        pos += size;
      }
      console.log(`${JSON.stringify(spec)}: max |logits − same-mode reference| = ${worst.toExponential(3)}; vs full-precision reference = ${vsFull.toExponential(3)}`);
      expect(worst).toBeLessThanOrEqual(tolerance);
      // The mode really compresses: its logits are measurably different from full precision.
      expect(vsFull).toBeGreaterThan(worst);

      // Accounting: stats are the real buffer sizes and match the doc's formula within block slack.
      const stats = engine.stats();
      const cache = model.kv as QuantKvCache;
      expect(stats.tokensHeld).toBe(pos);
      const real = [...Array(ref.config.numLayers).keys()].map((l) => {
        const b = cache.debugLayer(l);
        return b.codes.size + b.scales.size + b.ring.size;
      });
      expect(stats.kvLayers.map((x) => x.total)).toEqual(real);
      expect(stats.kvBytes).toBe(real.reduce((a, b) => a + b, 0));
      const formula = formulaLayerBytes(f, pos, 4);
      const slack = (cache.allocatedTokens - pos) * f.rowElems * ((f.keyBits + f.valueBits) / 8 + 8 / f.channelGroup) + 4096;
      for (const r of real) {
        expect(r).toBeGreaterThanOrEqual(formula - 1);
        expect(r).toBeLessThanOrEqual(formula + slack);
      }
      expect(stats.kvFp16EquivalentBytes).toBe(2 * 5 * f.rowElems * pos * 2);
    });
  }

  it('switching modes mid-chat keeps the conversation and changes the bytes', async () => {
    await engine.setKvMode({ mode: 'full' });
    const g = GOLDEN.onceUponATime;
    const first = await engine.generate(g.prompt, { maxNewTokens: 30 });
    expect(first.tokenIds).toEqual(g.ids.slice(0, 30));
    const before = engine.stats();
    const after = await engine.setKvMode({ mode: 'kivi', bits: 2, groupSize: 16, residual: 16 });
    expect(after.kvMode).toBe('kivi-2');
    expect(after.tokensHeld).toBe(before.tokensHeld);
    expect(after.kvBytes).toBeLessThan(before.kvBytes);
    // Back to full: the re-prefilled cache is exact again, so the golden continuation resumes unchanged.
    await engine.setKvMode({ mode: 'full' });
    const resumed = await engine.generate(g.prompt, { maxNewTokens: 60 });
    expect(resumed.tokenIds).toEqual(g.ids);
  });
});

function shapeOf(engine: Engine) {
  const c = engine.model!.config;
  return { numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim };
}
