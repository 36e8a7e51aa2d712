/**
 * Where the weight cache gets bytes it does not hold yet: a hub-like HTTP server (with Range requests for the
 * missing chunks of a resumed download) or files the user picked from a local folder.
 */
import { DownloadInterruptedError, ModelFileMissingError, ModelFormatError } from '../errors';
import { mayAttachToken, type TokenPolicy } from './token-policy';

/** Bytes of one file from some offset on. */
export interface UpstreamFile {
  /** Size of the whole file. */
  size: number;
  /** Validator of this version of the file (HTTP ETag), when the server sends one. */
  etag?: string;
  body: ReadableStream<Uint8Array>;
  /** Bytes at the start of `body` to drop: a server that ignores Range sends the file from byte 0. */
  skip: number;
}

/** A source of files for the cache to fill itself from. */
export interface Upstream {
  readonly label: string;
  /** The whole file, or null when it does not exist. */
  readAll(file: string): Promise<Uint8Array | null>;
  /** Bytes [start, end) of a file (to its end when `end` is left out). Throws ModelFileMissingError when it does not exist. */
  open(file: string, start: number, end?: number): Promise<UpstreamFile>;
  /** Whether the file exists. Throws when that cannot be told (the server is unreachable). */
  exists(file: string): Promise<boolean>;
}

/** Files served as `<baseUrl>/<repo>/resolve/<revision>/<file>`, like the Hugging Face hub. */
export class HubUpstream implements Upstream {
  readonly label: string;
  private readonly root: string;

  constructor(
    repo: string,
    baseUrl: string,
    revision = 'main',
    /** Hugging Face access token for gated models; sent as a Bearer header where `tokenPolicy` allows it, never stored. */
    private readonly token?: string,
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
    private readonly tokenPolicy?: TokenPolicy,
  ) {
    this.root = `${baseUrl.replace(/\/+$/, '')}/${repo}/resolve/${revision}/`;
    this.label = `${repo} at ${baseUrl}`;
  }

  /** URL of one file. */
  url(file: string): string {
    return this.root + file;
  }

  private async request(file: string, method: 'GET' | 'HEAD', range?: string): Promise<Response> {
    const headers: Record<string, string> = {};
    if (range) headers.Range = range;
    if (this.token && mayAttachToken(this.url(file), this.tokenPolicy) === true) headers.Authorization = `Bearer ${this.token}`;
    try {
      return await this.fetchImpl(this.url(file), { method, headers });
    } catch (err) {
      throw new ModelFileMissingError(
        `Could not reach ${this.url(file)} (${(err as Error).message}). Check the hub URL setting and your connection; a model cached in full loads offline.`,
      );
    }
  }

  private failure(file: string, status: number): ModelFileMissingError {
    const refused = this.token ? mayAttachToken(this.url(file), this.tokenPolicy) : true;
    const hint =
      status === 401 || status === 403
        ? refused !== true
          ? ` The model is gated or private. ${refused}`
          : ' The model is gated or private: accept its license on the hub and enter an access token.'
        : status === 404
          ? ' Check the model id and the hub URL setting.'
          : ' The hub may be having trouble: try again later.';
    return new ModelFileMissingError(`${file} of ${this.label} is not available (HTTP ${status}).${hint}`);
  }

  async readAll(file: string): Promise<Uint8Array | null> {
    const res = await this.request(file, 'GET');
    if (res.status === 404) return null;
    if (!res.ok) throw this.failure(file, res.status);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw new DownloadInterruptedError(`Downloading ${file} of ${this.label} failed part-way (${(err as Error).message}). Check your connection and load again.`);
    }
  }

  async open(file: string, start: number, end?: number): Promise<UpstreamFile> {
    const whole = start === 0 && end === undefined;
    const res = await this.request(file, 'GET', whole ? undefined : `bytes=${start}-${end === undefined ? '' : end - 1}`);
    if (!res.ok) throw this.failure(file, res.status);
    if (!res.body) throw new ModelFileMissingError(`${file} of ${this.label} came back with no body.`);
    const etag = res.headers.get('etag') ?? undefined;
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== start) {
        await res.body.cancel();
        throw new ModelFormatError(`${this.label} answered a request for ${file} from byte ${start} with the range "${res.headers.get('content-range')}".`);
      }
      return { size: Number(m[3]), etag, body: res.body, skip: 0 };
    }
    if (!Number.isSafeInteger(length)) {
      await res.body.cancel();
      throw new ModelFormatError(`${this.label} did not report the size of ${file} (no Content-Length), so it cannot be cached in chunks.`);
    }
    return { size: length, etag, body: res.body, skip: start }; // 200: the server ignored Range
  }

  async exists(file: string): Promise<boolean> {
    const res = await this.request(file, 'HEAD');
    if (res.status === 404) return false;
    if (!res.ok) throw this.failure(file, res.status);
    return true;
  }
}

/** Files of a folder the user picked (File objects survive postMessage, so this runs in the worker). */
export class FilesUpstream implements Upstream {
  private readonly byName = new Map<string, File>();

  constructor(readonly label: string, files: readonly File[]) {
    // Only the folder's own files: `folder/config.json`, not `folder/onnx/config.json`.
    const depth = (f: File) => (f.webkitRelativePath || f.name).split('/').length;
    for (const f of [...files].sort((a, b) => depth(a) - depth(b))) if (!this.byName.has(f.name)) this.byName.set(f.name, f);
  }

  private file(name: string): File {
    const f = this.byName.get(name);
    if (!f) throw new ModelFileMissingError(`The folder ${this.label} has no ${name}. Pick a folder with config.json, tokenizer.json and *.safetensors.`);
    return f;
  }

  async readAll(name: string): Promise<Uint8Array | null> {
    const f = this.byName.get(name);
    return f ? new Uint8Array(await f.arrayBuffer()) : null;
  }

  async open(name: string, start: number, end?: number): Promise<UpstreamFile> {
    const f = this.file(name);
    return { size: f.size, body: f.slice(start, end ?? f.size).stream(), skip: 0 };
  }

  async exists(name: string): Promise<boolean> {
    return this.byName.has(name);
  }
}

/** Exact-size reads from an upstream body, with errors that say the download (not the file) broke off. */
export class ExactReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private pending: Uint8Array = new Uint8Array(0);

  constructor(
    body: ReadableStream<Uint8Array>,
    private skipLeft: number,
    private readonly describe: () => string,
  ) {
    this.reader = body.getReader();
  }

  private async next(): Promise<Uint8Array> {
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await this.reader.read();
    } catch (err) {
      throw new DownloadInterruptedError(`${this.describe()} (${(err as Error).message}). What arrived is cached: check your connection and load again to resume.`);
    }
    if (result.done) throw new DownloadInterruptedError(`${this.describe()}: the server closed the connection early. What arrived is cached: load again to resume.`);
    return result.value;
  }

  /** Exactly `n` bytes, in a buffer of their own. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.pending.byteLength === 0) this.pending = await this.next();
      if (this.skipLeft > 0) {
        const drop = Math.min(this.skipLeft, this.pending.byteLength);
        this.pending = this.pending.subarray(drop);
        this.skipLeft -= drop;
        continue;
      }
      const take = Math.min(n - filled, this.pending.byteLength);
      out.set(this.pending.subarray(0, take), filled);
      this.pending = this.pending.subarray(take);
      filled += take;
    }
    return out;
  }

  /** Stop reading and release the connection. */
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}
