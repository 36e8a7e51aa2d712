/**
 * Shared fixture of the per-mode end-to-end tests: stories260k loaded on the Node engine (all logits,
 * f32), two CPU reference models (one run with the mode's reference cache, one in full precision) and a
 * Dracula token stream; `compareModeForward` feeds the stream as prefill chunks then decode steps.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { HubServer } from '../../scripts/hub-server';
import type { Engine } from '../../src/engine/engine';
import type { KvShape } from '../../src/kv/types';
import type { ReferenceKv } from '../../src/reference/kv-reference';
import { loadReferenceModel } from '../../src/reference/load-node';
import { hubSpec, nodeEngine, sharedModel, startTestHub } from './hub';

type ReferenceModel = Awaited<ReturnType<typeof loadReferenceModel>>;

export interface ModeRig {
  engine: Engine;
  /** Reference model run with the mode's reference cache. */
  ref: ReferenceModel;
  /** Reference model in full precision. */
  full: ReferenceModel;
  tokens: number[];
  shape: KvShape;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Register beforeAll/afterAll that build the rig; its fields are filled once beforeAll has run. */
export function stories260kModeRig(chunk: number, tokenCount: number): ModeRig {
  const rig = {} as ModeRig;
  let hub: HubServer;
  beforeAll(async () => {
    hub = await startTestHub();
    rig.engine = nodeEngine();
    rig.ref = await loadReferenceModel(sharedModel('stories260k'));
    rig.full = await loadReferenceModel(sharedModel('stories260k'));
    await rig.engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32', allLogits: true, prefillChunk: chunk });
    const c = rig.ref.config;
    rig.shape = { numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, maxTokens: c.maxPositions, maxStepTokens: chunk };
    const text = fs.readFileSync(path.join(sharedModel('stories260k'), '..', '..', 'eval', 'dracula.txt'), 'utf8').slice(5000, 9000);
    rig.tokens = rig.engine.tokenizer!.encodeText(text).slice(0, tokenCount);
  });
  afterAll(async () => {
    await rig.engine.unload();
    await hub.close();
  });
  return rig;
}

/**
 * Reset both caches, then run `prefill` chunks and `decode` single steps on the GPU and on both references.
 * Returns the worst |GPU − same-mode reference| and |GPU − full reference| over every logit, and tokens fed.
 */
export async function compareModeForward(rig: ModeRig, refKv: ReferenceKv, prefill: number[], decode: number): Promise<{ worst: number; vsFull: number; pos: number }> {
  const model = rig.engine.model!;
  const vocab = rig.ref.config.vocabSize;
  model.kv.reset();
  rig.ref.model.setKv(refKv);
  rig.full.model.reset();
  let worst = 0;
  let vsFull = 0;
  let pos = 0;
  for (const size of [...prefill, ...new Array<number>(decode).fill(1)]) {
    const chunk = rig.tokens.slice(pos, pos + size);
    const { logits } = await model.forward(chunk, size > 1 ? 'all-logits' : 'last-logits');
    const want = rig.ref.model.forward(chunk);
    const exact = rig.full.model.forward(chunk);
    worst = Math.max(worst, maxAbsDiff(logits!, size > 1 ? want : want.subarray(want.length - vocab)));
    vsFull = Math.max(vsFull, maxAbsDiff(logits!, size > 1 ? exact : exact.subarray(exact.length - vocab)));
    pos += size;
  }
  return { worst, vsFull, pos };
}
