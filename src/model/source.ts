/**
 * Where model files come from. The engine reads every file through a ModelSource, so the hub, a local
 * test server laid out like the hub, an IndexedDB cache or files picked by the user all go through the
 * same loading code.
 */
import { ModelFileMissingError } from '../errors';
import { CachedSource } from '../storage/cached-source';
import type { TokenPolicy } from '../storage/token-policy';
import { FilesUpstream, HubUpstream } from '../storage/upstream';

/** A readable model file: its byte size and a stream of its bytes. */
export interface ModelFileStream {
  size: number;
  body: ReadableStream<Uint8Array>;
}

/** A folder of model files in Hugging Face layout. */
export interface ModelSource {
  /** Human-readable description, used in error messages. */
  readonly label: string;
  /** The whole file as text. Throws ModelFileMissingError when it does not exist. */
  text(file: string): Promise<string>;
  /** The file as a byte stream. Throws ModelFileMissingError when it does not exist. */
  stream(file: string): Promise<ModelFileStream>;
  /** Whether the file exists. */
  has(file: string): Promise<boolean>;
  /** Bytes fetched over the network so far, for sources that also read from a local cache (progress display). */
  readonly bytesDownloaded?: number;
  /** Set when the load went on without caching (browser storage full or refused): what to tell the user. */
  readonly storageNotice?: string | null;
}

/** The public Hugging Face hub. */
export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** Serializable description of a source, as passed to the worker. */
export type ModelSourceSpec = (
  /** A hub repo; with `cache`, read through the IndexedDB weight cache (browser only), resuming and working offline. */
  | {
      kind: 'hub';
      repo: string;
      baseUrl?: string;
      revision?: string;
      cache?: boolean;
      /** For gated repos; never stored. */
      token?: string;
      /** Where the token may go (storage/token-policy.ts); without it, only to huggingface.co over https. */
      tokenPolicy?: TokenPolicy;
    }
  /**
   * Plain files under a URL folder, e.g. the demo model the app ships under public/. `files` lists what is
   * there: static hosts and dev servers often answer a missing file with index.html and status 200.
   */
  | { kind: 'url'; baseUrl: string; label?: string; files?: string[] }
  /** Files of a local folder the user picked, imported into the weight cache as they load. */
  | { kind: 'files'; name: string; files: File[] }
  /** A model in the weight cache, with nothing to fetch from (an imported folder after a reload). */
  | { kind: 'cache'; key: string }
) & {
  /**
   * A GGUF model: the one `.gguf` file of the folder that holds weights, config and tokenizer. Without it the
   * folder is read in Hugging Face layout (config.json, tokenizer.json, *.safetensors).
   */
  file?: string;
};

/** Whether a file name is a GGUF model file. */
export function isGgufFile(name: string | undefined): name is string {
  return typeof name === 'string' && /\.gguf$/i.test(name);
}

/** Weight-cache key of a hub repo, or of one GGUF file of it (each quantization is its own entry). */
export function hubCacheKey(repo: string, baseUrl: string = DEFAULT_HUB_URL, revision = 'main', file?: string): string {
  return `hub:${baseUrl.replace(/\/+$/, '')}/${repo}@${revision}${file ? `/${file}` : ''}`;
}

/** Weight-cache key of an imported folder (name and total size, so two different folders of one name do not mix). */
export function importCacheKey(name: string, files: readonly File[]): string {
  return `import:${name}:${files.reduce((s, f) => s + f.size, 0)}`;
}

/** Files served under one URL folder: `<root><file>`. */
export class UrlSource implements ModelSource {
  private readonly root: string;

  constructor(
    root: string,
    readonly label: string,
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
    /** The folder's files, when known: others are absent without asking the server. */
    private readonly listing?: readonly string[],
  ) {
    this.root = root.endsWith('/') ? root : `${root}/`;
  }

  /** URL of one file of the repo. */
  url(file: string): string {
    return this.root + file;
  }

  private async get(file: string, method = 'GET'): Promise<Response> {
    if (this.listing && !this.listing.includes(file)) throw new ModelFileMissingError(`${file} is not part of ${this.label}.`);
    let response: Response;
    try {
      response = await this.fetchImpl(this.url(file), { method });
    } catch (err) {
      throw new ModelFileMissingError(
        `Could not reach ${this.url(file)} (${(err as Error).message}). Check the hub URL setting and your connection.`,
      );
    }
    if (!response.ok) {
      const hint =
        response.status === 401 || response.status === 403
          ? ' The model may be gated: accept its license on the hub first.'
          : ' Check the model id and the hub URL setting.';
      throw new ModelFileMissingError(`${file} of ${this.label} is not available (HTTP ${response.status}).${hint}`);
    }
    return response;
  }

  async text(file: string): Promise<string> {
    return (await this.get(file)).text();
  }

  async stream(file: string): Promise<ModelFileStream> {
    const response = await this.get(file);
    const size = Number(response.headers.get('content-length') ?? NaN);
    if (!response.body) throw new ModelFileMissingError(`${file} of ${this.label} returned no body.`);
    return { size, body: response.body };
  }

  async has(file: string): Promise<boolean> {
    if (this.listing) return this.listing.includes(file);
    try {
      const r = await this.fetchImpl(this.url(file), { method: 'HEAD' });
      return r.ok;
    } catch {
      return false;
    }
  }
}

/** Files served as `<baseUrl>/<repo>/resolve/<revision>/<file>`, the way the hub lays out URLs. */
export class HubSource extends UrlSource {
  constructor(
    readonly repo: string,
    baseUrl: string = DEFAULT_HUB_URL,
    revision = 'main',
    fetchImpl: typeof fetch = (...a) => fetch(...a),
  ) {
    super(`${baseUrl.replace(/\/+$/, '')}/${repo}/resolve/${revision}/`, `${repo} at ${baseUrl}`, fetchImpl);
  }
}

/** Build the source a spec describes; `signal` aborts its fetches and stops it between cached chunks. */
export function sourceFromSpec(spec: ModelSourceSpec, signal?: AbortSignal): ModelSource {
  const fetchImpl: typeof fetch = (input, init) => fetch(input, { ...init, signal });
  switch (spec.kind) {
    case 'hub': {
      const baseUrl = spec.baseUrl ?? DEFAULT_HUB_URL;
      const revision = spec.revision ?? 'main';
      if (!spec.cache) return new HubSource(spec.repo, baseUrl, revision, fetchImpl);
      const origin = { kind: 'hub' as const, repo: spec.repo, baseUrl, revision, ...(spec.file ? { file: spec.file } : {}) };
      const label = spec.file ? `${spec.repo}/${spec.file}` : spec.repo;
      return new CachedSource(hubCacheKey(spec.repo, baseUrl, revision, spec.file), { label, origin }, new HubUpstream(spec.repo, baseUrl, revision, spec.token, fetchImpl, spec.tokenPolicy), undefined, undefined, signal);
    }
    case 'url':
      return new UrlSource(spec.baseUrl, spec.label ?? spec.baseUrl, fetchImpl, spec.files);
    case 'files': {
      const origin = { kind: 'import' as const, name: spec.name, ...(spec.file ? { file: spec.file } : {}) };
      return new CachedSource(importCacheKey(spec.name, spec.files), { label: spec.name, origin }, new FilesUpstream(spec.name, spec.files), undefined, undefined, signal);
    }
    case 'cache':
      return new CachedSource(spec.key, null, null, undefined, undefined, signal);
    default:
      throw new RangeError(`Unknown model source kind ${(spec as { kind: string }).kind}.`);
  }
}
