/**
 * The whole GPU forward pass against the CPU reference on the real stories260k model, loaded over HTTP
 * from a hub-like server: prefill in one chunk, in several chunks, and token-by-token decode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubServer } from '../scripts/hub-server';
import type { Engine } from '../src/engine/engine';
import { loadReferenceModel } from '../src/reference/load-node';
import { GOLDEN, hubSpec, nodeEngine, sharedModel, startTestHub } from './helpers/hub';

const PROMPT = [...GOLDEN.onceUponATime.promptIds, ...GOLDEN.onceUponATime.ids].slice(0, 64);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('stories260k forward pass vs CPU reference', () => {
  let hub: HubServer;
  let engine: Engine;
  let reference: Float32Array;
  const vocab = 512;

  beforeAll(async () => {
    hub = await startTestHub();
    engine = nodeEngine();
    const ref = await loadReferenceModel(sharedModel('stories260k'));
    reference = ref.model.forward(PROMPT);
  });
  afterAll(async () => {
    await engine.unload();
    await hub.close();
  });

  it('f32: one 64-token chunk, logits at every position within 1e-3', async () => {
    await engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32', allLogits: true, prefillChunk: 64 });
    const model = engine.model!;
    const { logits } = await model.forward(PROMPT, 'all-logits');
    const diff = maxAbsDiff(logits!, reference);
    console.log(`f32 single chunk: max |logits diff| over 64 positions = ${diff.toExponential(3)}`);
    expect(diff).toBeLessThanOrEqual(1e-3);
  });

  it('f32: chunks of 24 then token-by-token decode match the same rows', async () => {
    await engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32', allLogits: true, prefillChunk: 24 });
    const model = engine.model!;
    let worst = 0;
    let pos = 0;
    for (const size of [24, 24, 7]) {
      const { logits } = await model.forward(PROMPT.slice(pos, pos + size), 'all-logits');
      worst = Math.max(worst, maxAbsDiff(logits!, reference.subarray(pos * vocab, (pos + size) * vocab)));
      pos += size;
    }
    for (; pos < 64; pos++) {
      const { logits } = await model.forward([PROMPT[pos]], 'last-logits');
      worst = Math.max(worst, maxAbsDiff(logits!, reference.subarray(pos * vocab, (pos + 1) * vocab)));
    }
    console.log(`f32 chunked prefill + decode: max |logits diff| = ${worst.toExponential(3)}`);
    expect(worst).toBeLessThanOrEqual(1e-3);
  });

  it('f16 weights and KV (when the adapter has shader-f16) stay within 5e-2', async () => {
    const info = await engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f16', kvDtype: 'auto', allLogits: true, prefillChunk: 64 });
    if (!info.adapter.f16) return;
    expect(info.weightDtype).toBe('f16');
    const { logits } = await engine.model!.forward(PROMPT, 'all-logits');
    const diff = maxAbsDiff(logits!, reference);
    console.log(`f16 weights + f16 KV: max |logits diff| = ${diff.toExponential(3)}`);
    expect(diff).toBeLessThanOrEqual(5e-2);
  });

  it('without subgroups the decode path gives the same logits', async () => {
    await engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32', useSubgroups: false, prefillChunk: 64 });
    const model = engine.model!;
    await model.forward(PROMPT.slice(0, 63), 'none');
    const { logits } = await model.forward([PROMPT[63]], 'last-logits');
    const diff = maxAbsDiff(logits!, reference.subarray(63 * vocab, 64 * vocab));
    console.log(`no-subgroups decode: max |logits diff| = ${diff.toExponential(3)}`);
    expect(diff).toBeLessThanOrEqual(1e-3);
  });
});
