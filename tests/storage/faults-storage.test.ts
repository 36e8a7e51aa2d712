/**
 * Storage faults of the weight cache (fake-indexeddb, the real hub server): a full quota mid-load goes on
 * uncached with a notice, a cancelled load leaves valid chunks that a later load resumes from, and two tabs
 * caching the same model at once leave one consistent, complete entry.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, type UseStore } from 'idb-keyval';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../../scripts/hub-server';
import { LoadCancelledError } from '../../src/errors';
import { isModelComplete, mergeManifests, newFileEntry, newManifest } from '../../src/storage/chunks';
import { CachedSource, STORAGE_FULL_NOTICE } from '../../src/storage/cached-source';
import { HubUpstream } from '../../src/storage/upstream';
import { readChunk, readManifest, writeRecords } from '../../src/storage/weight-cache';

const CHUNK = 65_536;
const weights = Buffer.from(Array.from({ length: 600_000 }, (_, i) => (i * 2654435761) >>> 24));
const config = '{"model_type":"llama"}';
const tokenizer = JSON.stringify({ model: { vocab: Array.from({ length: 2000 }, (_, i) => `t${i}`) } });
const KEY = 'hub:test/model';

let hub: HubServer;
let dir: string;
let store: UseStore;
let dbCount = 0;
let fetched: string[];

/** A store whose readwrite transactions fail with QuotaExceededError after the first `allowed` of them. */
function quotaStore(inner: UseStore, allowed: number): UseStore & { refused: number } {
  let writes = 0;
  const s = ((mode, callback) => {
    if (mode === 'readwrite' && ++writes > allowed) {
      s.refused++;
      return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
    }
    return inner(mode, callback);
  }) as UseStore & { refused: number };
  s.refused = 0;
  return s;
}

function source(over: UseStore = store, signal?: AbortSignal): CachedSource {
  const fetchImpl: typeof fetch = (input, init) => {
    fetched.push(`${(init?.headers as Record<string, string>)?.Range ?? 'all'} ${String(input).split('/').pop()}`);
    return fetch(input, { ...init, signal });
  };
  const upstream = new HubUpstream('test/model', hub.baseUrl, 'main', undefined, fetchImpl);
  return new CachedSource(KEY, { label: 'test/model', origin: { kind: 'hub', repo: 'test/model', baseUrl: hub.baseUrl, revision: 'main' } }, upstream, over, CHUNK, signal);
}

/** What the engine asks for during a load; `onChunk` hears the count of weight chunks read so far. */
async function loadAll(src: CachedSource, onChunk?: (n: number) => void): Promise<Buffer> {
  await src.text('config.json');
  await src.text('tokenizer.json');
  await src.has('model.safetensors.index.json');
  const reader = (await src.stream('model.safetensors')).body.getReader();
  const parts: Uint8Array[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return Buffer.concat(parts);
    parts.push(value);
    onChunk?.(parts.length);
  }
}

/** Every chunk the stored manifest claims reads back with its length and checksum. */
async function expectConsistent(): Promise<number> {
  const m = await readManifest(KEY, store);
  if (!m) return 0;
  let claimed = 0;
  for (const [file, entry] of Object.entries(m.files)) {
    for (let i = 0; i < entry.checksums.length; i++) {
      if (entry.checksums[i] === null) continue;
      await readChunk(m, file, i, store); // throws CacheCorruptError on a bad record
      claimed++;
    }
  }
  return claimed;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faults-storage-'));
  fs.writeFileSync(path.join(dir, 'config.json'), config);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), tokenizer);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), weights);
  hub = await startHubServer({ repos: { 'test/model': dir } });
});
afterAll(async () => {
  await hub?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  store = createStore(`faults-storage-${dbCount++}`, 'chunks');
  fetched = [];
});

describe('weight cache faults', () => {
  it('fault: quota — QuotaExceededError on a chunk write mid-load: the load completes uncached with the notice, bytes are right', async () => {
    const full = quotaStore(store, 3); // the first writes (small files, two weight chunks) fit, then the quota is full
    const src = source(full);
    const bytes = await loadAll(src);
    expect(bytes.equals(weights)).toBe(true);
    expect(src.storageNotice).toBe(STORAGE_FULL_NOTICE);
    expect(STORAGE_FULL_NOTICE).toBe('Browser storage is full: this model was loaded without caching; it will download again next time.');
    expect((src.storageError as Error).message).toMatch(/QuotaExceededError/);
    expect(full.refused).toBe(1); // after the first refusal nothing more is tried
    // What was stored before the quota filled up is consistent, and not complete.
    const claimed = await expectConsistent();
    expect(claimed).toBeGreaterThan(0);
    expect(isModelComplete((await readManifest(KEY, store))!)).toBe(false);
    // A later load with room resumes: it fetches only what is missing and completes the entry.
    fetched = [];
    const again = source();
    expect((await loadAll(again)).equals(weights)).toBe(true);
    expect(again.storageNotice).toBeNull();
    expect(again.bytesDownloaded).toBeLessThan(weights.length);
    expect(isModelComplete((await readManifest(KEY, store))!)).toBe(true);
  });

  it('fault: quota — the very first write refused: nothing is stored, the load still completes', async () => {
    const src = source(quotaStore(store, 0));
    expect((await loadAll(src)).equals(weights)).toBe(true);
    expect(src.storageNotice).toBe(STORAGE_FULL_NOTICE);
    expect(await readManifest(KEY, store)).toBeUndefined();
    // Re-reading a small file of this load still works (it is held in memory, not claimed from IndexedDB).
    expect(await src.text('config.json')).toBe(config);
  });

  it('fault: quota — another write failure (not the quota) also goes on uncached, with its own notice', async () => {
    let writes = 0;
    const broken: UseStore = (mode, cb) => (mode === 'readwrite' && ++writes > 2 ? Promise.reject(new DOMException('The transaction was aborted.', 'UnknownError')) : store(mode, cb));
    const src = source(broken);
    expect((await loadAll(src)).equals(weights)).toBe(true);
    expect(src.storageNotice).toMatch(/UnknownError.*loaded without caching; it will download again next time\./);
    await expectConsistent();
  });

  it('fault: cancel — an abort mid-stream ends with LoadCancelledError; the chunks cached so far stay valid and a later load resumes after them', async () => {
    const controller = new AbortController();
    const src = source(store, controller.signal);
    await expect(loadAll(src, (n) => n === 4 && controller.abort())).rejects.toBeInstanceOf(LoadCancelledError);
    const claimed = await expectConsistent();
    expect(claimed).toBeGreaterThanOrEqual(2 + 4 - 1); // config, tokenizer and the weight chunks read before the abort
    fetched = [];
    const again = source();
    expect((await loadAll(again)).equals(weights)).toBe(true);
    expect(again.bytesDownloaded).toBeLessThan(weights.length - 3 * CHUNK);
    expect(fetched.filter((f) => f.endsWith('model.safetensors'))).toEqual([expect.stringMatching(/^bytes=\d+-\d+ model\.safetensors$/)]);
  });

  it('fault: cancel — an abort between chunks read from the cache stops with LoadCancelledError', async () => {
    await loadAll(source());
    const controller = new AbortController();
    const src = source(store, controller.signal);
    await expect(loadAll(src, (n) => n === 2 && controller.abort())).rejects.toBeInstanceOf(LoadCancelledError);
    expect(isModelComplete((await readManifest(KEY, store))!)).toBe(true);
  });

  it('fault: two tabs — two loads of one model caching at once leave one consistent, complete entry that loads offline', async () => {
    const [a, b] = await Promise.all([loadAll(source()), loadAll(source())]);
    expect(a.equals(weights) && b.equals(weights)).toBe(true);
    const m = (await readManifest(KEY, store))!;
    expect(isModelComplete(m)).toBe(true);
    expect(await expectConsistent()).toBe(2 + Math.ceil(weights.length / CHUNK));
    const offline = new CachedSource(KEY, null, null, store, CHUNK);
    expect((await loadAll(offline)).equals(weights)).toBe(true);
    expect(offline.bytesDownloaded).toBe(0);
  });

  it('fault: two tabs — a tab whose manifest knows fewer chunks, writing last, does not drop the chunks the other tab stored', async () => {
    await loadAll(source()); // tab A: complete
    const complete = (await readManifest(KEY, store))!;
    const stale = structuredClone(complete); // tab B's view from before A's later chunks
    stale.files['model.safetensors'].checksums = stale.files['model.safetensors'].checksums.map((c, i) => (i < 2 ? c : null));
    await writeRecords(stale, [], store);
    expect(isModelComplete((await readManifest(KEY, store))!)).toBe(true);
    expect(await expectConsistent()).toBe(2 + Math.ceil(weights.length / CHUNK));
  });

  it('fault: two tabs — mergeManifests keeps chunks of the same file version from both and drops another version', () => {
    const ours = newManifest('k', 'm', { kind: 'import', name: 'm' }, 4, 2);
    const stored = newManifest('k', 'm', { kind: 'import', name: 'm' }, 4, 1);
    ours.files.a = { ...newFileEntry(12, 4), checksums: [1, null, null] };
    stored.files.a = { ...newFileEntry(12, 4), checksums: [1, 2, null] };
    ours.files.b = { ...newFileEntry(8, 4, 'v2'), checksums: [5, null] };
    stored.files.b = { ...newFileEntry(8, 4, 'v1'), checksums: [7, 8] };
    stored.files.c = { ...newFileEntry(4, 4), checksums: [9] };
    stored.absent = ['x'];
    const merged = mergeManifests(stored, ours);
    expect(merged.files.a.checksums).toEqual([1, 2, null]);
    expect(merged.files.b.checksums).toEqual([5, null]);
    expect(merged.files.c.checksums).toEqual([9]);
    expect(merged.absent).toEqual(['x']);
    expect(merged.createdAt).toBe(1);
    expect(mergeManifests(undefined, ours)).toBe(ours);
  });
});
