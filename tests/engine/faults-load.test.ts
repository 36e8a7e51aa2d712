/**
 * Load faults on the Node engine (Dawn, the local hub server, fake-indexeddb): a cancelled load rejects with
 * LoadCancelledError wherever it is (fetching config, uploading weights, reading the cache), frees what it
 * uploaded, and the next load works and generates the golden text; a full storage quota loads uncached.
 */
import 'fake-indexeddb/auto';
import { createStore, type UseStore } from 'idb-keyval';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadCancelledError } from '../../src/errors';
import { hubCacheKey, type ModelSourceSpec } from '../../src/model/source';
import { CachedSource, STORAGE_FULL_NOTICE } from '../../src/storage/cached-source';
import { isModelComplete } from '../../src/storage/chunks';
import { HubUpstream } from '../../src/storage/upstream';
import { readChunk, readManifest } from '../../src/storage/weight-cache';
import type { LoadProgress } from '../../src/worker/api';
import { GOLDEN, useHubEngine } from '../helpers/hub';

const OPTIONS = { weightDtype: 'f32', kvDtype: 'f32' } as const;

const ctx = useHubEngine();
const engine = ctx.engine;

async function expectGolden(): Promise<void> {
  const g = GOLDEN.onceUponATime;
  const result = await engine.generate(g.prompt, { maxNewTokens: 20 });
  expect(result.tokenIds).toEqual(g.ids.slice(0, 20));
}

const stories = (): ModelSourceSpec => ({ kind: 'hub', repo: 'local/stories260k', baseUrl: ctx.hub.baseUrl });

describe('load faults', () => {
  it('fault: cancel — cancelLoad during the weight upload of byte-llama-12l rejects with LoadCancelledError; then stories260k loads and generates the golden text', async () => {
    const phases: LoadProgress[] = [];
    let cancelledAt = -1;
    const load = engine.load({ kind: 'hub', repo: 'local/byte-llama-12l', baseUrl: ctx.hub.baseUrl }, OPTIONS, (p) => {
      phases.push(p);
      if (p.phase === 'weights' && cancelledAt < 0 && p.bytesDone > 0) {
        cancelledAt = p.bytesDone;
        engine.cancelLoad();
      }
    });
    await expect(load).rejects.toBeInstanceOf(LoadCancelledError);
    await expect(load).rejects.toThrow(/local\/byte-llama-12l was cancelled/);
    expect(cancelledAt).toBeGreaterThan(0);
    expect(phases.some((p) => p.phase === 'compile' || p.phase === 'ready')).toBe(false);
    expect(engine.stats()).toMatchObject({ loaded: false, weightBytes: 0, trackedBytes: 0 }); // the partial weights were freed
    await engine.load(stories(), OPTIONS);
    await expectGolden();
  });

  it('fault: cancel — cancelLoad at the first progress event (config fetch) rejects with LoadCancelledError; cancelLoad with no load is a no-op', async () => {
    const load = engine.load(stories(), OPTIONS, (p) => p.phase === 'config' && engine.cancelLoad());
    await expect(load).rejects.toBeInstanceOf(LoadCancelledError);
    engine.cancelLoad();
    await engine.load(stories(), OPTIONS);
    await expectGolden();
  });

  it('fault: cancel — a cached load cancelled mid-download keeps valid chunks; the next load resumes from them and generates the golden text', async () => {
    const spec: ModelSourceSpec = { kind: 'hub', repo: 'local/byte-llama-12l', baseUrl: ctx.hub.baseUrl, cache: true };
    const load = engine.load(spec, OPTIONS, (p) => {
      if (p.phase === 'weights' && p.bytesDone >= 3 * 2 ** 20) engine.cancelLoad();
    });
    await expect(load).rejects.toBeInstanceOf(LoadCancelledError);
    const key = hubCacheKey('local/byte-llama-12l', ctx.hub.baseUrl);
    const m = (await readManifest(key))!;
    const weights = m.files['model.safetensors'];
    const stored = weights.checksums.filter((c) => c !== null).length;
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(weights.checksums.length);
    for (let i = 0; i < weights.checksums.length; i++) if (weights.checksums[i] !== null) await readChunk(m, 'model.safetensors', i);
    let downloaded = -1;
    await engine.load(spec, OPTIONS, (p) => p.phase === 'weights' && (downloaded = p.downloadedBytes ?? -1));
    expect(downloaded).toBeGreaterThan(0);
    expect(downloaded).toBeLessThanOrEqual(weights.size - stored * m.chunkBytes);
    expect(isModelComplete((await readManifest(key))!)).toBe(true);
    await engine.load(stories(), OPTIONS);
    await expectGolden();
  });

  it('fault: quota — a storage quota that fills up during a cached load: the model loads uncached, ModelInfo.cacheNotice says so, golden text', async () => {
    const inner = createStore('faults-load-quota', 'chunks');
    let writes = 0;
    const full: UseStore = (mode, cb) => (mode === 'readwrite' && ++writes > 2 ? Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError')) : inner(mode, cb));
    const origin = { kind: 'hub' as const, repo: 'local/stories260k', baseUrl: ctx.hub.baseUrl, revision: 'main' };
    const source = new CachedSource('hub:quota-test', { label: 'local/stories260k', origin }, new HubUpstream('local/stories260k', ctx.hub.baseUrl), full, 65_536);
    const info = await engine.load(source, OPTIONS);
    expect(info.cacheNotice).toBe(STORAGE_FULL_NOTICE);
    await expectGolden();
    expect(isModelComplete((await readManifest('hub:quota-test', inner))!)).toBe(false);
  });
});
