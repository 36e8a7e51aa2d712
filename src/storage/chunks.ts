/**
 * The weight cache's manifest and chunk arithmetic, pure (no IndexedDB): which byte range a chunk covers,
 * which chunks are still missing (the next HTTP Range request), how many bytes are stored, and whether a
 * cached model is complete enough to load with no network at all.
 */

/** Chunk size: 4 MiB. Large single IndexedDB values fail or stall in some browsers; 4 MiB records do not. */
export const DEFAULT_CHUNK_BYTES = 4 * 2 ** 20;

/** One cached file: its size, and a CRC-32 per chunk once that chunk is stored (null while missing). */
export interface CachedFileEntry {
  size: number;
  checksums: (number | null)[];
  /** The server's ETag when the download began, to notice a file that changed between resumes. */
  etag?: string;
}

/** Where a cached model came from, so the cache list can load (or resume) it again. */
export type CacheOrigin =
  | { kind: 'hub'; repo: string; baseUrl: string; revision: string; /** The GGUF file, for a GGUF entry. */ file?: string }
  | { kind: 'import'; name: string; file?: string };

/** Everything the cache knows about one model; stored next to its chunks and updated with each chunk. */
export interface CacheManifest {
  version: 1;
  /** Cache key; chunk records are keyed by it. */
  key: string;
  /** What the user sees, e.g. `HuggingFaceTB/SmolLM2-135M-Instruct`. */
  label: string;
  origin: CacheOrigin;
  chunkBytes: number;
  files: Record<string, CachedFileEntry>;
  /** Files the source said do not exist, so an offline load can answer `has()` without asking. */
  absent: string[];
  /** Shards named by model.safetensors.index.json once it was read, or the one file of a GGUF entry. */
  weightFiles?: string[];
  createdAt: number;
  updatedAt: number;
}

/** A fresh, empty manifest. */
export function newManifest(key: string, label: string, origin: CacheOrigin, chunkBytes = DEFAULT_CHUNK_BYTES, now = Date.now()): CacheManifest {
  if (!Number.isInteger(chunkBytes) || chunkBytes <= 0) throw new RangeError(`Chunk size must be a positive integer, got ${chunkBytes}.`);
  return { version: 1, key, label, origin, chunkBytes, files: {}, absent: [], createdAt: now, updatedAt: now };
}

/** An entry for a file of `size` bytes with no chunk stored yet. */
export function newFileEntry(size: number, chunkBytes: number, etag?: string): CachedFileEntry {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`File size must be a non-negative integer, got ${size}.`);
  const entry: CachedFileEntry = { size, checksums: new Array<number | null>(Math.ceil(size / chunkBytes)).fill(null) };
  if (etag) entry.etag = etag;
  return entry;
}

/**
 * What to store when `ours` is written over `stored` (another tab may have cached chunks meanwhile): ours, plus
 * every chunk `stored` has of the same version of a file (same size and ETag), its other files and absent names.
 * A chunk either manifest claims was written with it, so the merge never claims a chunk that is not there.
 */
export function mergeManifests(stored: CacheManifest | undefined, ours: CacheManifest): CacheManifest {
  if (!stored || stored.chunkBytes !== ours.chunkBytes) return ours;
  const files: Record<string, CachedFileEntry> = { ...ours.files };
  for (const [name, theirs] of Object.entries(stored.files)) {
    const mine = files[name];
    if (!mine) files[name] = theirs;
    else if (mine.size === theirs.size && (mine.etag ?? '') === (theirs.etag ?? '') && mine.checksums.length === theirs.checksums.length) {
      files[name] = { ...mine, checksums: mine.checksums.map((c, i) => c ?? theirs.checksums[i]) };
    }
  }
  const absent = [...new Set([...ours.absent, ...stored.absent])].filter((f) => !files[f]);
  const weightFiles = ours.weightFiles ?? stored.weightFiles;
  return { ...ours, files, absent, ...(weightFiles ? { weightFiles } : {}), createdAt: Math.min(ours.createdAt, stored.createdAt) };
}

/** Byte range [start, end) of chunk `index`. */
export function chunkSpan(entry: CachedFileEntry, chunkBytes: number, index: number): { start: number; end: number } {
  if (!Number.isInteger(index) || index < 0 || index >= entry.checksums.length) {
    throw new RangeError(`Chunk ${index} is outside 0..${entry.checksums.length - 1}.`);
  }
  const start = index * chunkBytes;
  return { start, end: Math.min(entry.size, start + chunkBytes) };
}

/** The first run of missing chunks at or after `from`: chunks [first, end), or null when none is missing. */
export function missingRun(entry: CachedFileEntry, from = 0): { first: number; end: number } | null {
  const n = entry.checksums.length;
  let first = from;
  while (first < n && entry.checksums[first] !== null) first++;
  if (first >= n) return null;
  let end = first;
  while (end < n && entry.checksums[end] === null) end++;
  return { first, end };
}

/** Bytes of a file already stored. */
export function storedFileBytes(entry: CachedFileEntry, chunkBytes: number): number {
  let bytes = 0;
  entry.checksums.forEach((c, i) => {
    if (c !== null) bytes += chunkSpan(entry, chunkBytes, i).end - i * chunkBytes;
  });
  return bytes;
}

/** Whether every chunk of a file is stored. */
export function isFileComplete(entry: CachedFileEntry | undefined): boolean {
  return !!entry && entry.checksums.every((c) => c !== null);
}

/** Bytes stored and bytes known (the sum of the known file sizes) of a cached model. */
export function manifestBytes(m: CacheManifest): { stored: number; total: number } {
  let stored = 0;
  let total = 0;
  for (const entry of Object.values(m.files)) {
    stored += storedFileBytes(entry, m.chunkBytes);
    total += entry.size;
  }
  return { stored, total };
}

export const WEIGHT_INDEX = 'model.safetensors.index.json';
const SINGLE_WEIGHTS = 'model.safetensors';

/** The weight files a complete copy needs, or null while that is not known yet (the index was never asked about). */
export function requiredWeightFiles(m: CacheManifest): string[] | null {
  if (m.weightFiles) return m.weightFiles;
  if (m.absent.includes(WEIGHT_INDEX)) return [SINGLE_WEIGHTS];
  return null;
}

/**
 * Whether the copy can load with no network: config, tokenizer and every weight file stored in full.
 * (Optional files the loader asks about were recorded as present or absent on the way.)
 */
export function isModelComplete(m: CacheManifest): boolean {
  const weights = requiredWeightFiles(m);
  if (!weights) return false;
  // A GGUF file carries its own config and tokenizer.
  const gguf = weights.length > 0 && weights.every((f) => /\.gguf$/i.test(f));
  return [...(gguf ? [] : ['config.json', 'tokenizer.json']), ...weights].every((f) => isFileComplete(m.files[f]));
}

/** Shard names from the text of model.safetensors.index.json; null when it is not a usable index (the loader reports why). */
export function shardsOfIndex(text: string): string[] | null {
  try {
    const map = (JSON.parse(text) as { weight_map?: unknown }).weight_map;
    if (typeof map !== 'object' || map === null) return null;
    const files = Object.values(map as Record<string, unknown>);
    if (!files.length || files.some((f) => typeof f !== 'string')) return null;
    return [...new Set(files as string[])].sort();
  } catch {
    return null;
  }
}
