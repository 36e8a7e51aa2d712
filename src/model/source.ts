/**
 * Where model files come from. The engine reads every file through a ModelSource, so the hub, a local
 * test server laid out like the hub, an IndexedDB cache or files picked by the user all go through the
 * same loading code.
 */
import { ModelFileMissingError } from '../errors';

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
}

/** The public Hugging Face hub. */
export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** Serializable description of a source, as passed to the worker. */
export type ModelSourceSpec = { kind: 'hub'; repo: string; baseUrl?: string; revision?: string };

/** Files served as `<baseUrl>/<repo>/resolve/<revision>/<file>`, the way the hub lays out URLs. */
export class HubSource implements ModelSource {
  readonly label: string;
  private readonly root: string;

  constructor(
    readonly repo: string,
    baseUrl: string = DEFAULT_HUB_URL,
    revision = 'main',
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
  ) {
    this.root = `${baseUrl.replace(/\/+$/, '')}/${repo}/resolve/${revision}/`;
    this.label = `${repo} at ${baseUrl}`;
  }

  /** URL of one file of the repo. */
  url(file: string): string {
    return this.root + file;
  }

  private async get(file: string, method = 'GET'): Promise<Response> {
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
    try {
      const r = await this.fetchImpl(this.url(file), { method: 'HEAD' });
      return r.ok;
    } catch {
      return false;
    }
  }
}

/** Build the source a spec describes. */
export function sourceFromSpec(spec: ModelSourceSpec): ModelSource {
  return new HubSource(spec.repo, spec.baseUrl, spec.revision);
}
