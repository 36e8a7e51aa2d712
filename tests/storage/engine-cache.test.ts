/**
 * The engine's one load path over every cached source kind (Node + Dawn, fake-indexeddb): stories260k
 * downloaded through the weight cache, then loaded again with the hub server stopped, then imported from
 * files and loaded from the cache alone; each time the golden greedy ids come out.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startHubServer } from '../../scripts/hub-server';
import type { Engine } from '../../src/engine/engine';
import { importCacheKey, type ModelSourceSpec } from '../../src/model/source';
import { listCachedModels } from '../../src/storage/weight-cache';
import type { LoadProgress } from '../../src/worker/api';
import { GOLDEN, nodeEngine, sharedModel } from '../helpers/hub';

const STORIES = sharedModel('stories260k');
const WEIGHT_BYTES = fs.statSync(path.join(STORIES, 'model.safetensors')).size;

async function loadAndCheck(engine: Engine, spec: ModelSourceSpec): Promise<LoadProgress[]> {
  const events: LoadProgress[] = [];
  await engine.load(spec, { weightDtype: 'f32', kvDtype: 'f32' }, (p) => events.push(p));
  const g = GOLDEN.onceUponATime;
  const result = await engine.generate(g.prompt, { maxNewTokens: 20 });
  expect(result.tokenIds).toEqual(g.ids.slice(0, 20));
  return events;
}

describe('engine loads through the weight cache', () => {
  const engine = nodeEngine();
  afterAll(async () => engine.unload());

  it('downloads once, then loads with the hub gone', async () => {
    const hub = await startHubServer({ repos: { 'local/stories260k': STORIES } });
    const spec: ModelSourceSpec = { kind: 'hub', repo: 'local/stories260k', baseUrl: hub.baseUrl, cache: true };
    const first = await loadAndCheck(engine, spec);
    const lastWeights = first.filter((p) => p.phase === 'weights').at(-1)!;
    expect(lastWeights).toMatchObject({ bytesDone: WEIGHT_BYTES, bytesTotal: WEIGHT_BYTES });
    expect(lastWeights.downloadedBytes).toBeGreaterThanOrEqual(WEIGHT_BYTES); // weights plus config and tokenizer
    expect(first.map((p) => p.phase).filter((p, i, a) => a[i - 1] !== p)).toEqual(['config', 'tokenizer', 'weights', 'compile', 'ready']);
    await hub.close();

    const offline = await loadAndCheck(engine, spec);
    expect(offline.filter((p) => p.phase === 'weights').at(-1)).toMatchObject({ bytesDone: WEIGHT_BYTES, downloadedBytes: 0 });
  });

  it('imports files into the cache, then loads them from the cache alone', async () => {
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'].map((n) => new File([fs.readFileSync(path.join(STORIES, n))], n));
    await loadAndCheck(engine, { kind: 'files', name: 'stories260k', files });
    const key = importCacheKey('stories260k', files);
    const entry = (await listCachedModels()).find((m) => m.key === key);
    expect(entry).toMatchObject({ label: 'stories260k', complete: true, origin: { kind: 'import', name: 'stories260k' } });
    await loadAndCheck(engine, { kind: 'cache', key });
  });

  const GGUF = 'stories260k-f32-v3.gguf';
  const GGUF_BYTES = fs.statSync(path.join(STORIES, GGUF)).size;

  it('a GGUF file of a hub repo: cached as its own complete entry, then loaded with the hub gone', async () => {
    const hub = await startHubServer({ repos: { 'local/stories260k': STORIES } });
    const spec: ModelSourceSpec = { kind: 'hub', repo: 'local/stories260k', baseUrl: hub.baseUrl, cache: true, file: GGUF };
    const first = await loadAndCheck(engine, spec);
    expect(first.filter((p) => p.phase === 'weights').at(-1)).toMatchObject({ bytesDone: GGUF_BYTES, bytesTotal: GGUF_BYTES });
    const entry = (await listCachedModels()).find((m) => m.label === `local/stories260k/${GGUF}`);
    expect(entry).toMatchObject({ complete: true, storedBytes: GGUF_BYTES, origin: { kind: 'hub', file: GGUF } });
    await hub.close();
    const offline = await loadAndCheck(engine, spec);
    expect(offline.filter((p) => p.phase === 'weights').at(-1)).toMatchObject({ bytesDone: GGUF_BYTES, downloadedBytes: 0 });
  });

  it('an imported .gguf file loads, then loads again from the cache alone', async () => {
    const file = new File([fs.readFileSync(path.join(STORIES, GGUF))], GGUF);
    await loadAndCheck(engine, { kind: 'files', name: GGUF, files: [file], file: GGUF });
    const key = importCacheKey(GGUF, [file]);
    expect((await listCachedModels()).find((m) => m.key === key)).toMatchObject({ complete: true, origin: { kind: 'import', file: GGUF } });
    await loadAndCheck(engine, { kind: 'cache', key, file: GGUF });
  });
});
