/**
 * CachedSource over the real hub server (Range requests) and fake-indexeddb: a first load caches every
 * file; a second loads with the network gone; an interrupted download resumes with one Range request for
 * exactly the missing chunks; damage and server-side changes give named errors; folders import into the cache.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, set, type UseStore } from 'idb-keyval';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../../scripts/hub-server';
import { CacheCorruptError, DownloadInterruptedError, ModelFileMissingError } from '../../src/errors';
import { isModelComplete } from '../../src/storage/chunks';
import { CachedSource } from '../../src/storage/cached-source';
import { FilesUpstream, HubUpstream } from '../../src/storage/upstream';
import { chunkKey, listCachedModels, readManifest } from '../../src/storage/weight-cache';

const CHUNK = 65_536;
const weights = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 2654435761) >>> 24));
const config = '{"model_type":"llama"}';
const tokenizer = JSON.stringify({ model: { vocab: Array.from({ length: 2000 }, (_, i) => `t${i}`) } });

let hub: HubServer;
let dir: string;
let store: UseStore;
let dbCount = 0;
let requests: Array<{ url: string; method: string; range?: string }>;

/** fetch that logs every request, optionally rewriting it. */
function loggingFetch(opts: { offline?: boolean; ignoreRange?: boolean; cutAfter?: number } = {}): typeof fetch {
  return async (input, init) => {
    const headers = { ...((init?.headers as Record<string, string>) ?? {}) };
    requests.push({ url: String(input), method: init?.method ?? 'GET', range: headers.Range });
    if (opts.offline) throw new TypeError('Failed to fetch');
    if (opts.ignoreRange) delete headers.Range;
    const res = await fetch(input, { ...init, headers });
    if (opts.cutAfter === undefined || !res.body) return res;
    let sent = 0;
    const reader = res.body.getReader();
    const cut = new ReadableStream<Uint8Array>({
      async pull(c) {
        const { value, done } = await reader.read();
        if (done) return c.close();
        if (sent + value.byteLength > (opts.cutAfter as number)) {
          c.enqueue(value.subarray(0, (opts.cutAfter as number) - sent));
          c.error(new TypeError('network error'));
          return;
        }
        sent += value.byteLength;
        c.enqueue(value);
      },
    });
    return new Response(cut, { status: res.status, headers: res.headers });
  };
}

function source(fetchImpl: typeof fetch = loggingFetch()): CachedSource {
  const upstream = new HubUpstream('test/model', hub.baseUrl, 'main', undefined, fetchImpl);
  return new CachedSource('hub:test/model', { label: 'test/model', origin: { kind: 'hub', repo: 'test/model', baseUrl: hub.baseUrl, revision: 'main' } }, upstream, store, CHUNK);
}

/** Read a stream to its end, or only its first `limit` chunks and then cancel (a reload mid-download). */
async function drain(body: ReadableStream<Uint8Array>, limit = Infinity): Promise<Buffer> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  while (parts.length < limit) {
    const { value, done } = await reader.read();
    if (done) return Buffer.concat(parts);
    parts.push(value);
  }
  await reader.cancel();
  return Buffer.concat(parts);
}

/** What the engine asks for during a load, in its order. */
async function loadAll(src: CachedSource): Promise<Buffer> {
  await src.text('config.json');
  await src.text('tokenizer.json');
  expect(await src.has('model.safetensors.index.json')).toBe(false);
  return drain((await src.stream('model.safetensors')).body);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cached-source-'));
  fs.writeFileSync(path.join(dir, 'config.json'), config);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), tokenizer);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), weights);
  fs.writeFileSync(path.join(dir, 'model-Q4_K_M.gguf'), weights);
  hub = await startHubServer({ repos: { 'test/model': dir } });
});
afterAll(async () => {
  await hub?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  store = createStore(`cached-source-${dbCount++}`, 'chunks');
  requests = [];
});

describe('CachedSource', () => {
  it('caches a first load and serves a second one with the network gone', async () => {
    const first = source();
    expect((await loadAll(first)).equals(weights)).toBe(true);
    expect(first.bytesDownloaded).toBe(config.length + tokenizer.length + weights.length);
    const m = await readManifest('hub:test/model', store);
    expect(m && isModelComplete(m)).toBe(true);
    expect(m?.files['model.safetensors'].checksums.length).toBe(5);

    requests = [];
    const offline = source(loggingFetch({ offline: true }));
    expect((await loadAll(offline)).equals(weights)).toBe(true);
    expect(await offline.text('config.json')).toBe(config);
    expect(requests).toEqual([]);
    expect(offline.bytesDownloaded).toBe(0);
    expect(offline.bytesFromCache).toBe(2 * config.length + tokenizer.length + weights.length);
    const [summary] = await listCachedModels(store);
    expect(summary).toMatchObject({ label: 'test/model', storedBytes: config.length + tokenizer.length + weights.length, complete: true });
  });

  it('stores nothing until the loader asks for weights (a rejected config leaves no entry)', async () => {
    const src = source();
    await src.text('config.json');
    await src.has('model.safetensors.index.json');
    expect(await readManifest('hub:test/model', store)).toBeUndefined();
    expect(await listCachedModels(store)).toEqual([]);
  });

  it('resumes an interrupted download with one Range request for the missing chunks only', async () => {
    const first = source();
    await first.text('config.json');
    await first.text('tokenizer.json');
    const partial = await drain((await first.stream('model.safetensors')).body, 2);
    expect(partial.equals(weights.subarray(0, 2 * CHUNK))).toBe(true);
    const [mid] = await listCachedModels(store);
    expect(mid).toMatchObject({ complete: false, storedBytes: config.length + tokenizer.length + 2 * CHUNK });

    requests = [];
    const resumed = source();
    expect((await loadAll(resumed)).equals(weights)).toBe(true);
    const weightRequests = requests.filter((r) => r.url.endsWith('model.safetensors'));
    expect(weightRequests).toEqual([{ url: expect.any(String), method: 'GET', range: `bytes=${2 * CHUNK}-${weights.length - 1}` }]);
    expect(resumed.bytesDownloaded).toBe(weights.length - 2 * CHUNK);
    expect(resumed.bytesFromCache).toBe(config.length + tokenizer.length + 2 * CHUNK);
  });

  it('fetches only the hole when a middle chunk is missing, and copes with a server that ignores Range', async () => {
    await loadAll(source());
    const m = await readManifest('hub:test/model', store);
    m!.files['model.safetensors'].checksums[2] = null;
    await set(`manifest|hub:test/model`, m, store);
    requests = [];
    expect((await drain((await source(loggingFetch({ ignoreRange: true })).stream('model.safetensors')).body)).equals(weights)).toBe(true);
    expect(requests.map((r) => r.range)).toEqual([`bytes=${2 * CHUNK}-${3 * CHUNK - 1}`]);
    expect(isModelComplete((await readManifest('hub:test/model', store))!)).toBe(true);
  });

  it('keeps what arrived when the connection drops, and resumes from there', async () => {
    const cutting = source(loggingFetch({ cutAfter: 3 * CHUNK + 100 }));
    await cutting.text('config.json').catch(() => {});
    const err = await loadAll(cutting).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadInterruptedError);
    expect(err.message).toMatch(/stopped at byte .* load again to resume/);
    const m = await readManifest('hub:test/model', store);
    expect(m!.files['model.safetensors'].checksums.filter((c) => c !== null).length).toBe(3);
    requests = [];
    expect((await drain((await source().stream('model.safetensors')).body)).equals(weights)).toBe(true);
    expect(requests.map((r) => r.range)).toEqual([`bytes=${3 * CHUNK}-${weights.length - 1}`]);
  });

  it('a GGUF file alone: resumes after a dropped connection, and the entry is complete without config.json', async () => {
    const gguf = 'model-Q4_K_M.gguf';
    const cutting = source(loggingFetch({ cutAfter: 2 * CHUNK + 7 }));
    const err = await drain((await cutting.stream(gguf)).body).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadInterruptedError);
    let m = await readManifest('hub:test/model', store);
    expect(m!.files[gguf].checksums.filter((c) => c !== null).length).toBe(2);
    expect(isModelComplete(m!)).toBe(false);
    requests = [];
    expect((await drain((await source().stream(gguf)).body)).equals(weights)).toBe(true);
    expect(requests.map((r) => r.range)).toEqual([`bytes=${2 * CHUNK}-${weights.length - 1}`]);
    m = await readManifest('hub:test/model', store);
    expect(m!.weightFiles).toEqual([gguf]);
    expect(isModelComplete(m!)).toBe(true);
    expect((await drain((await source(loggingFetch({ offline: true })).stream(gguf)).body)).equals(weights)).toBe(true);
  });

  it('reports a corrupt chunk by name instead of passing its bytes on', async () => {
    await loadAll(source());
    await set(chunkKey('hub:test/model', 'model.safetensors', 1), new Uint8Array(CHUNK), store);
    const err = await drain((await source().stream('model.safetensors')).body).catch((e) => e);
    expect(err).toBeInstanceOf(CacheCorruptError);
    expect(err.message).toMatch(/chunk 2 of 5 of model\.safetensors failed its checksum.*Delete the cached copy and download it again/);
  });

  it('refuses to splice a file that changed on the server between resumes', async () => {
    const first = source();
    await first.text('config.json');
    await drain((await first.stream('model.safetensors')).body, 1);
    const m = await readManifest('hub:test/model', store);
    m!.files['model.safetensors'].size += 1;
    m!.files['model.safetensors'].etag = undefined;
    await set(`manifest|hub:test/model`, m, store);
    const err = await drain((await source().stream('model.safetensors')).body).catch((e) => e);
    expect(err).toBeInstanceOf(CacheCorruptError);
    expect(err.message).toMatch(/changed on the server/);
  });

  it('says the hub is unreachable rather than that a file is absent', async () => {
    const err = await source(loggingFetch({ offline: true })).has('model.safetensors.index.json').catch((e) => e);
    expect(err).toBeInstanceOf(ModelFileMissingError);
    expect(err.message).toMatch(/Could not reach/);
  });

  it('imports a picked folder into the cache, then loads it from the cache alone', async () => {
    const files = [
      new File([config], 'config.json'),
      new File([tokenizer], 'tokenizer.json'),
      new File([weights], 'model.safetensors'),
    ];
    const origin = { kind: 'import' as const, name: 'my-model' };
    const imported = new CachedSource('import:my-model', { label: 'my-model', origin }, new FilesUpstream('my-model', files), store, CHUNK);
    expect((await loadAll(imported)).equals(weights)).toBe(true);
    const cacheOnly = new CachedSource('import:my-model', null, null, store);
    expect(cacheOnly.label).toBe('import:my-model');
    expect((await loadAll(cacheOnly)).equals(weights)).toBe(true);
    expect(await cacheOnly.has('chat_template.jinja')).toBe(false);
    await expect(new CachedSource('import:gone', null, null, store).text('config.json')).rejects.toThrow(/no longer in the model cache/);
  });
});
