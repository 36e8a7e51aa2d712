/**
 * Issue #12 (6a): a model whose logits turn NaN/Inf stops with NonFiniteLogitsError (greedy on the GPU argmax,
 * queued or not, and sampled on the CPU), keeps the text already streamed, and leaves the engine usable: the
 * same engine then loads a good model and generates normally. Crafted weights: a tiny random llama-family
 * model with a NaN in lm_head, an Inf in the final norm, or an Inf embedding row of a token it will generate.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubServer } from '../scripts/hub-server';
import type { Engine } from '../src/engine/engine';
import { NonFiniteLogitsError } from '../src/errors';
import { encodeSafetensors, type TensorToWrite } from '../src/model/safetensors';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD } from '../src/model/tensor-names';
import type { GenerateParams, TokenEvent } from '../src/worker/api';
import { hubSpec, nodeEngine, startTestHub } from './helpers/hub';
import { randomConfigs, randomModelTensors, writeRandomModel, type RandomModelOptions } from './helpers/random-model';

/** Untied (lm_head is its own tensor), with the stories260k tokenizer's 512 ids. */
const OPTS: RandomModelOptions = { ...randomConfigs.mistral, vocabSize: 512, seed: 12 };
const F32 = { weightDtype: 'f32', kvDtype: 'f32' } as const;
const PROMPT = 'Once upon a time';
const PROMPT_IDS = [1, 403, 407, 261, 378];
const GREEDY: GenerateParams = { maxNewTokens: 12, temperature: 0, stopAtEos: false };

let hub: HubServer;
let engine: Engine;
let root: string;
let counter = 0;
let goodIds: number[] = [];

/** Serve a copy of the random model whose tensors `damage` edits; returns its repo id. */
async function serve(damage: (t: Map<string, TensorToWrite>) => void = () => {}): Promise<string> {
  const dir = path.join(root, `m${counter}`);
  await writeRandomModel(dir, OPTS);
  const tensors = randomModelTensors(OPTS);
  damage(new Map(tensors.map((t) => [t.name, t])));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  const repo = `crafted/m${counter++}`;
  hub.setRepo(repo, dir);
  return repo;
}

/** Generate, collecting the streamed tokens; returns them with the error (null when it succeeded). */
async function generateCollect(params: GenerateParams): Promise<{ streamed: TokenEvent[]; error: unknown; ids: number[] }> {
  const streamed: TokenEvent[] = [];
  try {
    const r = await engine.generate(PROMPT, params, (t) => void streamed.push(t));
    return { streamed, error: null, ids: r.tokenIds };
  } catch (error) {
    return { streamed, error, ids: [] };
  }
}

/** The error is a NonFiniteLogitsError at `at`, with the words. */
function expectNonFinite(error: unknown, at: number): void {
  expect(error).toBeInstanceOf(NonFiniteLogitsError);
  const e = error as NonFiniteLogitsError;
  expect(e.name).toBe('NonFiniteLogitsError');
  expect(e.tokenIndex).toBe(at);
  expect(e.message).toBe(`The model produced NaN/Inf logits (at token ${at}). Try f32 weights or another KV mode.`);
  console.log(`${e.name}: ${e.message}`);
}

/** The engine is still usable: it stays loaded, and a good model then loads and generates the same ids as before. */
async function expectGoodModelStillWorks(): Promise<void> {
  expect(engine.stats().loaded).toBe(true);
  await engine.load(hubSpec(hub, await serve()), F32);
  const again = await generateCollect(GREEDY);
  expect(again.error).toBeNull();
  expect(again.ids).toEqual(goodIds);
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-numerics-'));
  hub = await startTestHub();
  engine = nodeEngine();
  await engine.load(hubSpec(hub, await serve()), F32);
  const good = await generateCollect(GREEDY);
  expect(good.error).toBeNull();
  goodIds = good.ids;
  expect(goodIds).toHaveLength(GREEDY.maxNewTokens as number);
});
afterAll(async () => {
  await engine?.unload();
  await hub?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('non-finite logits', () => {
  it('fault: non-finite lm_head (one NaN weight) stops greedy decoding at token 1 with NonFiniteLogitsError', async () => {
    await engine.load(hubSpec(hub, await serve((t) => (t.get(LM_HEAD)!.data[7 * OPTS.hiddenSize + 3] = Number.NaN))), F32);
    const r = await generateCollect(GREEDY);
    expectNonFinite(r.error, 1);
    expect(r.streamed).toHaveLength(0);
    await expectGoodModelStillWorks();
  });

  it('fault: non-finite final norm (an Inf weight) stops sampled decoding at token 1 with NonFiniteLogitsError', async () => {
    await engine.load(hubSpec(hub, await serve((t) => (t.get(FINAL_NORM)!.data[5] = Infinity))), F32);
    const r = await generateCollect({ ...GREEDY, temperature: 0.8, seed: 3 });
    expectNonFinite(r.error, 1);
    await expectGoodModelStillWorks();
  });

  it('fault: non-finite embedding of a generated token stops mid-reply and keeps the tokens streamed before it', async () => {
    // The k-th generated token (0-based) has an Inf embedding row: tokens 1..k+1 come out, and feeding token k+1
    // makes the logits of token k+2 NaN. Pick the first token that is neither in the prompt nor generated earlier.
    const k = goodIds.findIndex((id, i) => i >= 1 && !PROMPT_IDS.includes(id) && !goodIds.slice(0, i).includes(id));
    expect(k).toBeGreaterThan(0);
    const poisoned = goodIds[k];
    const repo = await serve((t) => t.get(EMBED_TOKENS)!.data.fill(Infinity, poisoned * OPTS.hiddenSize, (poisoned + 1) * OPTS.hiddenSize));
    await engine.load(hubSpec(hub, repo), F32);
    // Greedy runs queued steps (several tokens per wait) on this cache; sampled reads logits every step.
    for (const params of [GREEDY, { ...GREEDY, temperature: 0.5, topK: 1, seed: 1 }]) {
      const r = await generateCollect(params);
      expectNonFinite(r.error, k + 2);
      expect(r.streamed.map((t) => t.tokenId)).toEqual(goodIds.slice(0, k + 1));
    }
    await expectGoodModelStillWorks();
  });
});
