/**
 * The IndexedDB layer (fake-indexeddb in Node; the e2e tests use Chromium's real one): chunk and manifest
 * written together, verified reads with named errors for corrupt, short and missing chunks, listing, delete.
 */
import 'fake-indexeddb/auto';
import { createStore, del, get, keys, set, type UseStore } from 'idb-keyval';
import { beforeEach, describe, expect, it } from 'vitest';
import { CacheCorruptError } from '../../src/errors';
import { newFileEntry, newManifest, type CacheManifest } from '../../src/storage/chunks';
import { crc32 } from '../../src/storage/crc32';
import { chunkKey, deleteCachedModel, listCachedModels, readChunk, readManifest, writeRecords } from '../../src/storage/weight-cache';

let store: UseStore;
let n = 0;
beforeEach(() => {
  store = createStore(`weight-cache-test-${n++}`, 'chunks');
});

const origin = { kind: 'hub' as const, repo: 'org/m', baseUrl: 'http://h', revision: 'main' };

/** A manifest with one 10-byte file in 4-byte chunks, all stored. */
async function storedModel(key = 'k', label = 'org/m'): Promise<{ m: CacheManifest; data: Uint8Array }> {
  const m = newManifest(key, label, origin, 4);
  const data = Uint8Array.from({ length: 10 }, (_, i) => i + 1);
  const entry = newFileEntry(10, 4);
  m.files['model.safetensors'] = entry;
  const chunks = [0, 1, 2].map((index) => {
    const bytes = data.slice(index * 4, Math.min(10, index * 4 + 4));
    entry.checksums[index] = crc32(bytes);
    return { file: 'model.safetensors', index, bytes };
  });
  await writeRecords(m, chunks, store);
  return { m, data };
}

describe('weight cache records', () => {
  it('round-trips chunks and the manifest', async () => {
    const { m, data } = await storedModel();
    expect(await readManifest('k', store)).toEqual(m);
    const parts = await Promise.all([0, 1, 2].map((i) => readChunk(m, 'model.safetensors', i, store)));
    expect(Array.from(parts.flatMap((p) => Array.from(p)))).toEqual(Array.from(data));
  });

  it('stores a view as its own bytes, not its whole underlying buffer', async () => {
    const m = newManifest('v', 'v', origin, 4);
    const big = new Uint8Array(1000).fill(9);
    await writeRecords(m, [{ file: 'f', index: 0, bytes: big.subarray(10, 14) }], store);
    const raw = await get<Uint8Array>(chunkKey('v', 'f', 0), store);
    expect(raw?.buffer.byteLength).toBe(4);
  });

  it('names a checksum mismatch and says what to do', async () => {
    const { m } = await storedModel();
    await set(chunkKey('k', 'model.safetensors', 1), Uint8Array.of(5, 6, 7, 99), store);
    const err = await readChunk(m, 'model.safetensors', 1, store).catch((e) => e);
    expect(err).toBeInstanceOf(CacheCorruptError);
    expect(err.name).toBe('CacheCorruptError');
    expect(err.message).toMatch(/chunk 2 of 3 of model\.safetensors failed its checksum/);
    expect(err.message).toMatch(/Delete the cached copy and download it again/);
  });

  it('names a truncated and a missing chunk', async () => {
    const { m } = await storedModel();
    await set(chunkKey('k', 'model.safetensors', 0), Uint8Array.of(1, 2), store);
    await expect(readChunk(m, 'model.safetensors', 0, store)).rejects.toThrow(/truncated: chunk 1 of 3 .* holds 2 bytes instead of 4/);
    await del(chunkKey('k', 'model.safetensors', 2), store);
    await expect(readChunk(m, 'model.safetensors', 2, store)).rejects.toThrow(/incomplete: chunk 3 of 3 .* is missing/);
  });

  it('lists models with stored and total sizes, newest first, and deletes one without touching the other', async () => {
    const a = await storedModel('a', 'model A');
    await new Promise((r) => setTimeout(r, 5));
    const b = newManifest('b', 'model B', origin, 4);
    b.files['model.safetensors'] = newFileEntry(10, 4);
    b.files['model.safetensors'].checksums[0] = crc32(Uint8Array.of(1, 2, 3, 4));
    b.updatedAt = a.m.updatedAt + 10;
    await writeRecords(b, [{ file: 'model.safetensors', index: 0, bytes: Uint8Array.of(1, 2, 3, 4) }], store);

    const list = await listCachedModels(store);
    expect(list.map((x) => [x.label, x.storedBytes, x.totalBytes, x.complete])).toEqual([
      ['model B', 4, 10, false],
      ['model A', 10, 10, false], // no config/tokenizer: not loadable offline
    ]);

    await deleteCachedModel('a', store);
    expect((await listCachedModels(store)).map((x) => x.key)).toEqual(['b']);
    const left = await keys<string>(store);
    expect(left.filter((k) => k.includes('|a|') || k.endsWith('|a'))).toEqual([]);
    expect(left).toContain(chunkKey('b', 'model.safetensors', 0));
  });
});
