/**
 * kvtab as a library: an LLM engine on WebGPU with a compressed KV cache, behind an OpenAI-shaped API.
 *
 *   import { createEngine } from 'kvtab';
 *   const engine = createEngine();
 *   await engine.load('HuggingFaceTB/SmolLM2-135M-Instruct');
 *   for await (const chunk of await engine.chat.completions.create({ messages, stream: true }))
 *     out.textContent += chunk.choices[0]?.delta.content ?? '';
 *
 * `engineFetch(engine)` serves the same engine as `/v1/chat/completions`, `/v1/completions` and `/v1/models`
 * for the official `openai` client. Errors are the named classes below, each with OpenAI's `type` and `code`.
 */
import { workerBackend, type BackendOptions } from './backend';
import { inThreadBackend } from './in-thread';
import { engineOn, type KvtabEngine } from './engine';

/** Options of createEngine: where the engine runs. */
export type CreateEngineOptions = BackendOptions;

/**
 * Create an engine. In browsers it runs in its own worker (`worker: true`, the default where Worker exists);
 * `{ worker: false, gpu }` runs it in this thread (Node with the `webgpu` package, or inside your own worker).
 */
export function createEngine(options: CreateEngineOptions = {}): KvtabEngine {
  const worker = options.worker ?? typeof Worker === 'function';
  return engineOn(worker === false ? inThreadBackend(options.gpu) : workerBackend(worker));
}

export type { ChatCompletions, Completions, ChunkStream, KvtabEngine } from './engine';
export { engineFetch, errorBody } from './fetch';
export { parseKvMode } from './kv-mode';
export { CHAT_STOP_STRINGS } from './requests';
export * from './types';
export {
  CacheCorruptError,
  CacheWriteError,
  ContextOverflowError,
  DeviceLostError,
  DownloadInterruptedError,
  EngineBusyError,
  EngineError,
  GpuOutOfMemoryError,
  InvalidRequestError,
  KvBudgetTooSmallError,
  LoadCancelledError,
  MemoryPlanError,
  ModelFileMissingError,
  ModelFormatError,
  ModelNotFoundError,
  NoModelLoadedError,
  NonFiniteLogitsError,
  UnsupportedArchitectureError,
  UnsupportedDtypeError,
  WebGpuUnavailableError,
  WorkerCrashedError,
  openAiErrorKind,
} from '../errors';
export type { OpenAiErrorKind, OpenAiErrorType } from '../errors';
