/**
 * A ModelSource backed by the IndexedDB weight cache. Every file is read chunk by chunk: chunks already
 * stored come from IndexedDB (checked against their CRC-32), missing runs are fetched from the upstream with
 * one Range request each, stored as they arrive and passed on to the loader at once. So a download streams
 * to the GPU, resumes after a reload where it stopped, and a complete copy loads with no network at all.
 * Nothing is stored until the loader asks for weights: a config the engine rejects leaves no cache entry.
 * A failed write (storage full, storage refused) does not fail the load: it goes on uncached and says so in
 * `storageNotice`; what was stored before stays valid. `signal` stops a load between chunks.
 */
import type { UseStore } from 'idb-keyval';
import { CacheCorruptError, LoadCancelledError, ModelFileMissingError } from '../errors';
import type { ModelFileStream, ModelSource } from '../model/source';
import {
  chunkSpan,
  DEFAULT_CHUNK_BYTES,
  missingRun,
  newFileEntry,
  newManifest,
  shardsOfIndex,
  WEIGHT_INDEX,
  type CachedFileEntry,
  type CacheManifest,
  type CacheOrigin,
} from './chunks';
import { crc32 } from './crc32';
import { ExactReader, type Upstream, type UpstreamFile } from './upstream';
import { chunkKey, readChunk, readManifest, writeRecords, weightStore } from './weight-cache';

/** Chunk writes allowed in flight before the stream waits for IndexedDB (bounds memory). */
const MAX_PENDING_WRITES = 2;

type PendingChunk = { file: string; index: number; bytes: Uint8Array };

/** What the model manager says when chunk writes failed and the load went on without caching. */
export const STORAGE_FULL_NOTICE = 'Browser storage is full: this model was loaded without caching; it will download again next time.';

/** What a new cache entry is called and where it comes from. */
export interface CacheIdentity {
  label: string;
  origin: CacheOrigin;
}

/** Reads through the IndexedDB cache, filling it from `upstream` (null: the cache alone, for offline entries). */
export class CachedSource implements ModelSource {
  readonly label: string;
  /** Bytes fetched from the upstream during this load. */
  bytesDownloaded = 0;
  /** Bytes read from IndexedDB during this load. */
  bytesFromCache = 0;
  private manifest: CacheManifest | null = null;
  /** Whether the manifest is in IndexedDB (false until the first weight stream of a new entry). */
  private persisted = false;
  /** Chunks of a not-yet-persisted entry, written when the loader reaches the weights. */
  private deferred: PendingChunk[] = [];
  /** Chunks read this load whose IndexedDB write has not finished, by record key: re-reads come from here. */
  private readonly unsaved = new Map<string, Uint8Array>();
  private writeChain: Promise<void> = Promise.resolve();
  private pendingWrites = 0;
  /** Set when a chunk write failed: the rest of this load is not cached. */
  storageNotice: string | null = null;
  /** The write failure behind `storageNotice`. */
  storageError: unknown = null;

  constructor(
    readonly key: string,
    private readonly identity: CacheIdentity | null,
    private readonly upstream: Upstream | null,
    private readonly store: UseStore = weightStore(),
    private readonly chunkBytes = DEFAULT_CHUNK_BYTES,
    private readonly signal?: AbortSignal,
  ) {
    this.label = identity?.label ?? key;
  }

  private async loadManifest(): Promise<CacheManifest> {
    if (this.manifest) return this.manifest;
    const stored = await readManifest(this.key, this.store);
    if (stored) {
      this.persisted = true;
      this.manifest = stored;
    } else if (this.identity) {
      this.manifest = newManifest(this.key, this.identity.label, this.identity.origin, this.chunkBytes);
    } else {
      throw new ModelFileMissingError(`${this.key} is no longer in the model cache (it was deleted). Download or import it again.`);
    }
    return this.manifest;
  }

  /**
   * Queue a manifest write (with chunks) behind earlier ones; before the entry is persisted, only remember the
   * chunks. The returned promise never rejects: a failed write switches the rest of the load to uncached.
   */
  private queueWrite(chunks: PendingChunk[]): Promise<void> {
    const m = this.manifest as CacheManifest;
    for (const c of chunks) this.unsaved.set(chunkKey(m.key, c.file, c.index), c.bytes);
    if (!this.persisted) {
      this.deferred.push(...chunks);
      return Promise.resolve();
    }
    if (this.storageNotice) return Promise.resolve(); // small files stay readable from `unsaved`
    m.updatedAt = Date.now();
    const snapshot = structuredClone(m);
    this.pendingWrites++;
    const written = this.writeChain
      // A chunk not written (this write failed, or an earlier one) stays in `unsaved`, so this load still reads it.
      .then(async () => {
        if (this.storageNotice) return;
        await writeRecords(snapshot, chunks, this.store);
        chunks.forEach((c) => this.unsaved.delete(chunkKey(m.key, c.file, c.index)));
      })
      .catch((err) => {
        this.storageError ??= err;
        // writeRecords names the browser's error inside its CacheWriteError message.
        const cause = /\((\w+Error)\b/.exec(String((err as Error)?.message))?.[1] ?? (err as Error)?.name ?? 'Error';
        this.storageNotice = cause === 'QuotaExceededError' ? STORAGE_FULL_NOTICE : `Browser storage refused the download (${cause}): this model was loaded without caching; it will download again next time.`;
      })
      .finally(() => this.pendingWrites--);
    this.writeChain = written;
    return written;
  }

  private checkCancelled(): void {
    if (this.signal?.aborted) throw new LoadCancelledError(`Loading ${this.label} was cancelled. What was cached so far stays: load it again to resume.`);
  }

  /** Persist a new entry with everything read so far: the loader accepted config and tokenizer and wants weights. */
  private async persist(): Promise<void> {
    if (this.persisted) return;
    this.persisted = true;
    const chunks = this.deferred.splice(0);
    await this.queueWrite(chunks);
  }

  /** Wait for every queued write. */
  private async flush(): Promise<void> {
    await this.writeChain;
  }

  private noteAbsent(file: string): void {
    const m = this.manifest as CacheManifest;
    if (!m.absent.includes(file)) m.absent.push(file);
    void this.queueWrite([]);
  }

  async has(file: string): Promise<boolean> {
    const m = await this.loadManifest();
    if (m.files[file]) return true;
    if (m.absent.includes(file)) return false;
    if (!this.upstream) return false;
    const exists = await this.upstream.exists(file);
    if (!exists) this.noteAbsent(file);
    return exists;
  }

  async text(file: string): Promise<string> {
    const text = new TextDecoder().decode(await this.readWhole(file));
    const m = this.manifest as CacheManifest;
    if (file === WEIGHT_INDEX && !m.weightFiles) {
      const shards = shardsOfIndex(text);
      if (shards) m.weightFiles = shards;
    }
    return text;
  }

  /** A small file whole: from the cache when stored, else from the upstream (then cached). */
  private async readWhole(file: string): Promise<Uint8Array> {
    const m = await this.loadManifest();
    const entry = m.files[file];
    if (entry && (entry.checksums.every((c) => c !== null) || !this.upstream)) {
      const parts: Uint8Array[] = [];
      for await (const part of this.chunks(file, entry, null)) parts.push(part);
      return concat(parts, entry.size);
    }
    if (m.absent.includes(file) || !this.upstream) {
      throw new ModelFileMissingError(`${file} is not part of ${m.label}${this.upstream ? '' : ' as cached'}.`);
    }
    const bytes = await this.upstream.readAll(file);
    if (!bytes) {
      this.noteAbsent(file);
      throw new ModelFileMissingError(`${file} of ${this.upstream.label} does not exist. Check the model id.`);
    }
    this.bytesDownloaded += bytes.byteLength;
    const fresh = newFileEntry(bytes.byteLength, m.chunkBytes);
    const chunks: PendingChunk[] = fresh.checksums.map((_, i) => {
      const { start, end } = chunkSpan(fresh, m.chunkBytes, i);
      const part = bytes.slice(start, end);
      fresh.checksums[i] = crc32(part);
      return { file, index: i, bytes: part };
    });
    m.files[file] = fresh;
    await this.queueWrite(chunks);
    return bytes;
  }

  async stream(file: string): Promise<ModelFileStream> {
    const m = await this.loadManifest();
    if (/\.gguf$/i.test(file)) m.weightFiles = [file]; // config, tokenizer and weights in one file
    await this.persist();
    let entry = m.files[file];
    let first: UpstreamFile | null = null;
    if (!entry) {
      if (m.absent.includes(file) || !this.upstream) throw new ModelFileMissingError(`${file} is not part of ${m.label}${this.upstream ? '' : ' as cached'}.`);
      first = await this.upstream.open(file, 0);
      entry = newFileEntry(first.size, m.chunkBytes, first.etag);
      m.files[file] = entry;
      await this.queueWrite([]);
    }
    const chunks = this.chunks(file, entry, first);
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const r = await chunks.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel: async () => {
        // The loader stops reading after the last tensor: finish the chunk writes before it reports ready.
        await chunks.return(undefined);
        await this.flush();
      },
    });
    return { size: entry.size, body };
  }

  /**
   * The chunks of a file in order: stored ones verified from IndexedDB, each run of missing ones from one
   * upstream request (`opened`, when given, is a response already positioned at byte 0).
   */
  private async *chunks(file: string, entry: CachedFileEntry, opened: UpstreamFile | null): AsyncGenerator<Uint8Array> {
    try {
      yield* this.readChunks(file, entry, opened);
    } catch (err) {
      // Whatever arrived before the failure is stored before the error is reported, so a reload resumes after it.
      await this.flush();
      this.checkCancelled(); // an aborted fetch reads as the cancel it was
      throw err;
    }
  }

  private async *readChunks(file: string, entry: CachedFileEntry, opened: UpstreamFile | null): AsyncGenerator<Uint8Array> {
    const m = this.manifest as CacheManifest;
    const n = entry.checksums.length;
    let i = 0;
    while (i < n) {
      this.checkCancelled();
      if (entry.checksums[i] !== null) {
        const bytes = this.unsaved.get(chunkKey(m.key, file, i)) ?? (await readChunk(m, file, i, this.store));
        this.bytesFromCache += bytes.byteLength;
        i++;
        yield bytes;
        continue;
      }
      const run = missingRun(entry, i) as { first: number; end: number };
      if (!this.upstream) {
        const have = entry.checksums.filter((c) => c !== null).length;
        throw new CacheCorruptError(`The cached copy of ${m.label} is incomplete: ${file} has ${have} of ${n} chunks and there is nothing to fetch the rest from. Delete the cached copy and import or download it again.`);
      }
      const start = run.first * m.chunkBytes;
      const upstreamFile = opened ?? (await this.upstream.open(file, start, chunkSpan(entry, m.chunkBytes, run.end - 1).end));
      opened = null;
      const reader = new ExactReader(upstreamFile.body, upstreamFile.skip, () => `Download of ${file} of ${m.label} stopped at byte ${i * m.chunkBytes} of ${entry.size}`);
      try {
        if (upstreamFile.size !== entry.size || (entry.etag && upstreamFile.etag && upstreamFile.etag !== entry.etag)) {
          throw new CacheCorruptError(
            `${file} of ${m.label} changed on the server since its download began (now ${upstreamFile.size} bytes, cached parts are of a ${entry.size}-byte version). Delete the cached copy and download it again.`,
          );
        }
        for (; i < run.end; i++) {
          this.checkCancelled();
          const { start: s, end: e } = chunkSpan(entry, m.chunkBytes, i);
          const bytes = await reader.read(e - s);
          this.bytesDownloaded += bytes.byteLength;
          // Uncached, a chunk stays missing (a second read fetches it again) and is not held in memory.
          if (!this.storageNotice) {
            entry.checksums[i] = crc32(bytes);
            const written = this.queueWrite([{ file, index: i, bytes }]);
            if (this.pendingWrites > MAX_PENDING_WRITES) await written;
          }
          yield bytes;
        }
      } finally {
        await reader.cancel();
      }
    }
    await this.flush();
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
