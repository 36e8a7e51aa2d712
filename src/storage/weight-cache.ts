/**
 * Weights cached in IndexedDB through idb-keyval, in chunks. Records in one object store:
 *   `manifest|<key>`                 → CacheManifest (files, sizes, per-chunk CRC-32)
 *   `chunk|<key>|<file>|<index>`     → Uint8Array of one chunk (DEFAULT_CHUNK_BYTES, the last one shorter)
 * A chunk and the manifest that lists it are written in one transaction, so the manifest never claims a chunk
 * that is not there unless something outside the app damaged the database; reads verify length and checksum.
 * Tabs share the records: each write merges with the stored manifest under the model's Web Lock.
 * Works on the main thread and in workers (the engine worker does every download and chunk write).
 */
import { createStore, delMany, get, getMany, keys, promisifyRequest, type UseStore } from 'idb-keyval';
import { CacheCorruptError, CacheWriteError } from '../errors';
import { chunkSpan, isModelComplete, manifestBytes, mergeManifests, type CacheManifest, type CacheOrigin } from './chunks';
import { crc32 } from './crc32';

/** IndexedDB database and object store names of the weight cache. */
export const WEIGHT_DB_NAME = 'kvtab-weights';
export const WEIGHT_STORE_NAME = 'chunks';

let defaultStore: UseStore | null = null;

/** The app's weight store (opened on first use, so importing this module touches no IndexedDB). */
export function weightStore(): UseStore {
  defaultStore ??= createStore(WEIGHT_DB_NAME, WEIGHT_STORE_NAME);
  return defaultStore;
}

const MANIFEST_PREFIX = 'manifest|';
/** Record key of a model's manifest. */
export const manifestKey = (key: string): string => MANIFEST_PREFIX + key;
/** Record key of one chunk. */
export const chunkKey = (key: string, file: string, index: number): string => `chunk|${key}|${file}|${index}`;

/** What to tell the user about a damaged copy, and what to do. */
const REPAIR = 'Delete the cached copy and download it again.';

/** The stored manifest of `key`, or undefined. */
export async function readManifest(key: string, store: UseStore = weightStore()): Promise<CacheManifest | undefined> {
  return get<CacheManifest>(manifestKey(key), store);
}

/**
 * Write a manifest and any chunks in one transaction. `manifest` should be a snapshot (it is cloned when the
 * transaction runs). The manifest is merged with the stored one inside that transaction, and the write holds
 * the model's Web Lock where there is one, so two tabs caching the same model never drop each other's chunks.
 */
export async function writeRecords(manifest: CacheManifest, chunks: Array<{ file: string; index: number; bytes: Uint8Array }>, store: UseStore = weightStore()): Promise<void> {
  const write = () =>
    store('readwrite', (s) => {
      const read = s.get(manifestKey(manifest.key));
      read.onsuccess = () => {
        for (const c of chunks) s.put(tight(c.bytes), chunkKey(manifest.key, c.file, c.index));
        s.put(mergeManifests(read.result as CacheManifest | undefined, manifest), manifestKey(manifest.key));
      };
      return promisifyRequest(s.transaction);
    });
  try {
    await withModelLock(manifest.key, write);
  } catch (err) {
    const e = err as Error;
    const quota = e?.name === 'QuotaExceededError';
    throw new CacheWriteError(
      `Could not store ${manifest.label} in the browser's storage (${e?.name ?? 'Error'}: ${e?.message ?? String(err)}). ` +
        (quota ? 'The storage quota is full: delete cached models you no longer need, then load again.' : 'Check that site storage is allowed (it is off in some private windows), then load again.'),
    );
  }
}

/** Run `fn` holding the exclusive Web Lock of one cached model (every tab and worker of the origin), or at once where there are no Web Locks. */
export async function withModelLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks?.request) return fn();
  return locks.request(`kvtab-cache:${key}`, fn) as Promise<T>;
}

/** A view of its own buffer: IndexedDB clones the whole underlying ArrayBuffer of a view, not just the view. */
function tight(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** Read one chunk and check its length and CRC-32 against the manifest. Throws CacheCorruptError with what to do. */
export async function readChunk(m: CacheManifest, file: string, index: number, store: UseStore = weightStore()): Promise<Uint8Array> {
  const entry = m.files[file];
  const want = entry?.checksums[index];
  if (!entry || want === null || want === undefined) throw new RangeError(`Chunk ${index} of ${file} is not stored.`);
  const n = entry.checksums.length;
  const where = `chunk ${index + 1} of ${n} of ${file}`;
  const raw = await get<unknown>(chunkKey(m.key, file, index), store);
  if (raw === undefined) {
    throw new CacheCorruptError(`The cached copy of ${m.label} is incomplete: ${where} is missing from IndexedDB (the browser may have evicted part of it). ${REPAIR}`);
  }
  const bytes = raw instanceof Uint8Array ? raw : raw instanceof ArrayBuffer ? new Uint8Array(raw) : null;
  if (!bytes) throw new CacheCorruptError(`The cached copy of ${m.label} is damaged: ${where} is not a byte array. ${REPAIR}`);
  const span = chunkSpan(entry, m.chunkBytes, index);
  if (bytes.byteLength !== span.end - span.start) {
    throw new CacheCorruptError(
      `The cached copy of ${m.label} is truncated: ${where} holds ${bytes.byteLength} bytes instead of ${span.end - span.start}. ${REPAIR}`,
    );
  }
  const got = crc32(bytes);
  if (got !== want) {
    throw new CacheCorruptError(
      `The cached copy of ${m.label} is corrupt: ${where} failed its checksum (CRC-32 ${hex(got)}, expected ${hex(want)}). ${REPAIR}`,
    );
  }
  return bytes;
}

const hex = (n: number) => n.toString(16).padStart(8, '0');

/** One cached model as the cache list shows it. */
export interface CachedModelSummary {
  key: string;
  label: string;
  origin: CacheOrigin;
  /** Bytes stored in IndexedDB. */
  storedBytes: number;
  /** Sum of the sizes of the files known so far (a partial download knows the sizes of the files it began). */
  totalBytes: number;
  /** Loadable with no network. */
  complete: boolean;
  updatedAt: number;
}

/** Every cached model, most recently used first. */
export async function listCachedModels(store: UseStore = weightStore()): Promise<CachedModelSummary[]> {
  const all = await keys<IDBValidKey>(store);
  const manifestKeys = all.filter((k): k is string => typeof k === 'string' && k.startsWith(MANIFEST_PREFIX));
  const manifests = (await getMany<CacheManifest>(manifestKeys, store)).filter((m): m is CacheManifest => !!m);
  return manifests
    .map((m) => {
      const { stored, total } = manifestBytes(m);
      return { key: m.key, label: m.label, origin: m.origin, storedBytes: stored, totalBytes: total, complete: isModelComplete(m), updatedAt: m.updatedAt };
    })
    .sort((a, b) => b.updatedAt - a.updatedAt);
}

/** Delete a cached model: its manifest first (so a half-finished delete never looks complete), then every chunk record. */
export async function deleteCachedModel(key: string, store: UseStore = weightStore()): Promise<void> {
  const prefix = `chunk|${key}|`;
  await withModelLock(key, async () => {
    const chunkKeys = (await keys<IDBValidKey>(store)).filter((k) => typeof k === 'string' && k.startsWith(prefix));
    await delMany([manifestKey(key)], store);
    await delMany(chunkKeys, store);
  });
}

/** Origin storage use and quota from navigator.storage.estimate(), or null where the browser has no such API. */
export async function storageEstimate(): Promise<{ usage: number; quota: number; persisted: boolean } | null> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (!storage?.estimate) return null;
  const { usage = 0, quota = 0 } = await storage.estimate();
  const persisted = storage.persisted ? await storage.persisted() : false;
  return { usage, quota, persisted };
}
