/**
 * The library entry: `createEngine()` gives an engine with an OpenAI-shaped API (and WebLLM's names where it
 * has one): `load` / `reload`, `chat.completions.create`, `completions.create`, `models.list`, `kv.*`,
 * `interruptGenerate`, `unload`. The engine runs in its own worker unless told otherwise (src/lib/backend.ts).
 */
import { InvalidRequestError, ModelNotFoundError, NoModelLoadedError } from '../errors';
import type { ModelSourceSpec } from '../model/source';
import type { EngineStats, GenerateResult, KvBudget, KvModeSpec, LoadProgress, ModelInfo } from '../worker/api';
import type { EngineClient } from '../worker/client';
import type { Backend } from './backend';
import { parseKvMode } from './kv-mode';
import { chatMessages, generateParamsOf } from './requests';
import { reply, ReplyLock } from './reply';
import { chatChunks, chatCompletion, newMeta, textChunks, textCompletion } from './shapes';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  Completion,
  CompletionCreateParams,
  EngineLoadOptions,
  InitProgressReport,
  ModelList,
  ModelRef,
  SamplingParams,
} from './types';

/** A stream of chunks that can also be stopped (WebLLM and OpenAI's streams iterate the same way). */
export type ChunkStream<T> = AsyncIterable<T> & { controller: AbortController };

/** `chat.completions.create`: a stream of chunks when `stream` is true, else one chat.completion. */
export interface ChatCompletions {
  create(req: ChatCompletionCreateParams & { stream: true }): Promise<ChunkStream<ChatCompletionChunk>>;
  create(req: ChatCompletionCreateParams & { stream?: false | null }): Promise<ChatCompletion>;
  create(req: ChatCompletionCreateParams): Promise<ChunkStream<ChatCompletionChunk> | ChatCompletion>;
}

/** `completions.create`: plain continuation of `prompt`. */
export interface Completions {
  create(req: CompletionCreateParams & { stream: true }): Promise<ChunkStream<Completion>>;
  create(req: CompletionCreateParams & { stream?: false | null }): Promise<Completion>;
  create(req: CompletionCreateParams): Promise<ChunkStream<Completion> | Completion>;
}

/** The engine the library gives. */
export interface KvtabEngine {
  /**
   * Load a model (replacing the loaded one; a running reply is stopped first). `onProgress` hears bytes, phases and
   * WebLLM-style progress.
   */
  load(model: ModelRef, options?: EngineLoadOptions, onProgress?: (p: InitProgressReport) => void): Promise<ModelInfo>;
  /** WebLLM's name for load. */
  reload(model: ModelRef, options?: EngineLoadOptions, onProgress?: (p: InitProgressReport) => void): Promise<ModelInfo>;
  /** The loaded model, or null. */
  readonly model: ModelInfo | null;
  /** The loaded model's id in requests and models.list (the repo id it was loaded by); '' when none. */
  readonly modelId: string;
  chat: { completions: ChatCompletions };
  completions: Completions;
  models: { list(): Promise<ModelList> };
  kv: {
    /** Live cache statistics (bytes by component and layer, ratio to fp16, tokens held). */
    stats(): Promise<EngineStats>;
    /** Switch the KV mode mid-chat (a spec, or a name such as `kivi-2+rot`); the cached tokens are re-filled in it. */
    setMode(spec: KvModeSpec | string): Promise<EngineStats>;
    /** Bytes the KV cache may take in the next replies (or a full KvBudget; null: no budget). */
    setBudget(budget: number | KvBudget | null): void;
  };
  /** Stop the running reply at the next token (it ends with finish_reason `abort`). */
  interruptGenerate(): Promise<void>;
  /** Cancel a running load. */
  cancelLoad(): Promise<void>;
  unload(): Promise<void>;
  /** A one-line speed summary of the last reply (WebLLM's name). */
  runtimeStatsText(): Promise<string>;
  /** The worker client when the engine runs in a worker: crash events and restart. */
  readonly client: EngineClient | null;
  /** Stop the engine (and its worker). */
  terminate(): void;
}

function sourceOf(model: ModelRef, options: EngineLoadOptions): ModelSourceSpec {
  if (typeof model !== 'string') return model;
  const gguf = /^([^/:\s]+\/[^/:\s]+)[/:](.+\.gguf)$/i.exec(model);
  const repo = gguf ? gguf[1] : model;
  if (!/^[^/\s]+\/[^/\s]+$/.test(repo)) throw new InvalidRequestError(`"${model}" is not a hub repo id (org/name, or org/name/file.gguf).`, 'model');
  const cache = options.cache ?? typeof indexedDB !== 'undefined';
  return { kind: 'hub', repo, ...(options.hubUrl ? { baseUrl: options.hubUrl } : {}), ...(cache ? { cache } : {}), ...(gguf ? { file: gguf[2] } : {}) };
}

function progressReport(p: LoadProgress, started: number): InitProgressReport {
  const progress = p.phase === 'ready' ? 1 : p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
  const text = p.phase === 'weights' ? `Loading weights: ${(100 * progress).toFixed(0)}%${p.file ? ` (${p.file})` : ''}` : p.phase === 'ready' ? 'Ready.' : `Loading ${p.phase}…`;
  return { ...p, progress, timeElapsed: (performance.now() - started) / 1000, text };
}

/** The library's engine on a backend (src/lib/index.ts's createEngine picks one; the app passes its worker client's). */
export function engineOn(backendOrPromise: Backend | Promise<Backend>): KvtabEngine {
  const backendReady = Promise.resolve(backendOrPromise);
  let backend: Backend | null = null;
  const attach = (b: Backend) => {
    backend = b;
    // A crashed worker has nothing loaded; a restart starts empty too.
    b.client?.onCrash(() => (model = null));
  };
  // A backend given as it is (a worker client) is there at once: `client` must not wait for a tick.
  if (backendOrPromise instanceof Promise) void backendOrPromise.then(attach, () => {});
  else attach(backendOrPromise);
  const lock = new ReplyLock();
  let model: ModelInfo | null = null;
  /** The loaded model's id: the repo id it was loaded by (the label for other sources). */
  let modelId = '';
  let budget: KvBudget | null = null;
  let lastResult: GenerateResult | null = null;
  const api = async () => (await backendReady).api;

  const modelFor = (req: SamplingParams): string => {
    if (!model) throw new NoModelLoadedError('No model is loaded. Call engine.load(model) first.');
    if (req.model && req.model !== modelId && req.model !== model.label) throw new ModelNotFoundError(`The model "${req.model}" is not loaded (the loaded model is "${modelId}"). Load it with engine.load first.`);
    return modelId;
  };

  function run<T, S>(
    req: SamplingParams,
    prefix: 'chatcmpl' | 'cmpl',
    input: () => Parameters<typeof reply>[2],
    stream: (pieces: ReturnType<typeof reply>, meta: ReturnType<typeof newMeta>) => AsyncGenerator<S>,
    whole: (pieces: ReturnType<typeof reply>, meta: ReturnType<typeof newMeta>) => Promise<T>,
  ): Promise<ChunkStream<S> | T> {
    return (async () => {
      const b = await backendReady;
      const meta = newMeta(prefix, modelFor(req), !!req.stream_options?.include_kv_stats);
      const chatStops = prefix === 'chatcmpl';
      const params = generateParamsOf(req, chatStops, budget);
      const controller = new AbortController();
      const signal = req.signal ? AbortSignal.any([req.signal, controller.signal]) : controller.signal;
      const pieces = reply(b, lock, input(), params, signal, (r) => (lastResult = r));
      if (!req.stream) return whole(pieces, meta);
      const chunks = stream(pieces, meta);
      return Object.assign(chunks, { controller }) as ChunkStream<S>;
    })();
  }

  const load = async (ref: ModelRef, opts: EngineLoadOptions = {}, onProgress?: (p: InitProgressReport) => void): Promise<ModelInfo> => {
    const b = await backendReady;
    const { hubUrl: _hub, cache: _cache, ...loadOptions } = opts;
    const started = performance.now();
    const listener = onProgress ? b.callback((p: LoadProgress) => onProgress(progressReport(p, started))) : undefined;
    const previous = { model, modelId };
    // A load replaces the model: a running reply is stopped (finish_reason abort), then the load takes its turn.
    if (lock.busy) await b.api.abort();
    const release = await lock.acquire();
    try {
      model = null;
      const spec = sourceOf(ref, opts);
      model = await b.api.load(spec, loadOptions, listener);
      modelId = typeof ref === 'string' ? ref : spec.kind === 'hub' ? (spec.file ? `${spec.repo}/${spec.file}` : spec.repo) : model.label;
      return model;
    } catch (err) {
      // A failed or cancelled load may have left the previous model in place.
      const still = await b.api.stats().then((st) => st.loaded, () => false);
      if (still && previous.model) ({ model, modelId } = previous);
      throw err;
    } finally {
      release();
    }
  };

  const engine: KvtabEngine = {
    load,
    reload: load,
    get model() {
      return model;
    },
    get modelId() {
      return model ? modelId : '';
    },
    chat: {
      completions: {
        create: ((req: ChatCompletionCreateParams) => run(req, 'chatcmpl', () => chatMessages(req), chatChunks, chatCompletion)) as ChatCompletions['create'],
      },
    },
    completions: {
      create: ((req: CompletionCreateParams) =>
        run(
          req,
          'cmpl',
          () => {
            if (typeof req.prompt !== 'string') throw new InvalidRequestError('prompt must be a string.', 'prompt');
            return req.prompt;
          },
          textChunks,
          textCompletion,
        )) as Completions['create'],
    },
    models: {
      async list() {
        const data: ModelList['data'] = [];
        if (model) data.push({ id: modelId, object: 'model', created: 0, owned_by: 'kvtab' });
        return { object: 'list', data };
      },
    },
    kv: {
      stats: async () => (await api()).stats(),
      setMode: async (spec) => (await api()).setKvMode(typeof spec === 'string' ? parseKvMode(spec) : spec),
      setBudget(b) {
        if (b !== null && typeof b === 'number' && !(b > 0)) throw new InvalidRequestError('A KV budget is a positive number of bytes.', 'budget');
        budget = b === null ? null : typeof b === 'number' ? { bytes: b, autoEscalate: true } : b;
      },
    },
    interruptGenerate: async () => (await api()).abort(),
    cancelLoad: async () => (await api()).cancelLoad(),
    unload: async () => {
      model = null;
      await (await api()).unload();
    },
    runtimeStatsText: async () => (lastResult ? `prefill: ${lastResult.prefillTokensPerSecond.toFixed(1)} tok/s, decode: ${lastResult.decodeTokensPerSecond.toFixed(1)} tok/s` : ''),
    get client() {
      return backend?.client ?? null;
    },
    terminate: () => void backendReady.then((b) => b.terminate()),
  };
  return engine;
}
