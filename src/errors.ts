/**
 * Named, user-facing errors. Each carries a message that says what happened and what to do.
 * They cross the worker boundary through comlink, which keeps `name` and `message`. Each class spells out
 * its `name`: minified production bundles rename classes, so `new.target.name` would read e.g. "M".
 */

/** OpenAI's error `type` values that kvtab uses (an error body is `{ error: { message, type, code, param } }`). */
export type OpenAiErrorType = 'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

/** How each named error reads in OpenAI terms: its `type`, its `code`, and the HTTP status the fetch API answers with. */
export interface OpenAiErrorKind {
  type: OpenAiErrorType;
  code: string;
  status: number;
}

const KINDS: Record<string, OpenAiErrorKind> = {
  InvalidRequestError: { type: 'invalid_request_error', code: 'invalid_value', status: 400 },
  ModelNotFoundError: { type: 'not_found_error', code: 'model_not_found', status: 404 },
  ContextOverflowError: { type: 'invalid_request_error', code: 'context_length_exceeded', status: 400 },
  KvBudgetTooSmallError: { type: 'invalid_request_error', code: 'kv_budget_too_small', status: 400 },
  NoModelLoadedError: { type: 'invalid_request_error', code: 'model_not_loaded', status: 409 },
  EngineBusyError: { type: 'rate_limit_error', code: 'engine_busy', status: 429 },
  WebGpuUnavailableError: { type: 'server_error', code: 'webgpu_unavailable', status: 503 },
  ModelFormatError: { type: 'invalid_request_error', code: 'model_format', status: 422 },
  ModelFileMissingError: { type: 'not_found_error', code: 'model_file_missing', status: 404 },
  UnsupportedArchitectureError: { type: 'invalid_request_error', code: 'unsupported_architecture', status: 422 },
  UnsupportedDtypeError: { type: 'invalid_request_error', code: 'unsupported_dtype', status: 422 },
  GpuOutOfMemoryError: { type: 'server_error', code: 'gpu_out_of_memory', status: 507 },
  MemoryPlanError: { type: 'server_error', code: 'memory_plan', status: 507 },
  DeviceLostError: { type: 'server_error', code: 'device_lost', status: 503 },
  WorkerCrashedError: { type: 'server_error', code: 'worker_crashed', status: 503 },
  CacheCorruptError: { type: 'server_error', code: 'cache_corrupt', status: 500 },
  DownloadInterruptedError: { type: 'server_error', code: 'download_interrupted', status: 502 },
  CacheWriteError: { type: 'server_error', code: 'cache_write', status: 507 },
  LoadCancelledError: { type: 'invalid_request_error', code: 'load_cancelled', status: 499 },
  NonFiniteLogitsError: { type: 'server_error', code: 'non_finite_logits', status: 500 },
};

/** The OpenAI reading of an error by its `name` (errors that crossed the worker keep only name and message). */
export function openAiErrorKind(name: string): OpenAiErrorKind {
  return KINDS[name] ?? { type: 'server_error', code: 'internal_error', status: 500 };
}

/** Base class: every error the engine raises on purpose. `type` and `code` are OpenAI's error fields. */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
  /** OpenAI error type, e.g. `invalid_request_error`. */
  get type(): OpenAiErrorType {
    return openAiErrorKind(this.name).type;
  }
  /** OpenAI-style error code, e.g. `context_length_exceeded`. */
  get code(): string {
    return openAiErrorKind(this.name).code;
  }
}

/** A library request is malformed (missing messages, an unknown role, an unsupported parameter). */
export class InvalidRequestError extends EngineError {
  override name = 'InvalidRequestError';
  /** The request field at fault (OpenAI's `param`). */
  readonly param: string | null;
  constructor(message: string, param: string | null = null) {
    super(message);
    this.param = param;
  }
}

/** A request names a model this engine has not loaded. */
export class ModelNotFoundError extends EngineError {
  override name = 'ModelNotFoundError';
}

/** The browser (or Node binding) offers no WebGPU at all. */
export class WebGpuUnavailableError extends EngineError {
  override name = 'WebGpuUnavailableError';
}

/** A model file is malformed: truncated, inconsistent header, bad JSON. */
export class ModelFormatError extends EngineError {
  override name = 'ModelFormatError';
}

/** A required model file (config.json, tokenizer.json, weights) could not be fetched. */
export class ModelFileMissingError extends EngineError {
  override name = 'ModelFileMissingError';
}

/** The config names an architecture this engine does not implement. */
export class UnsupportedArchitectureError extends EngineError {
  override name = 'UnsupportedArchitectureError';
}

/** A tensor uses a dtype the loader cannot convert. */
export class UnsupportedDtypeError extends EngineError {
  override name = 'UnsupportedDtypeError';
}

/** The prompt plus requested tokens do not fit in the model's context. */
export class ContextOverflowError extends EngineError {
  override name = 'ContextOverflowError';
}

/** The KV memory budget cannot hold even a minimal window of tokens. */
export class KvBudgetTooSmallError extends EngineError {
  override name = 'KvBudgetTooSmallError';
}

/** The GPU refused an allocation. */
export class GpuOutOfMemoryError extends EngineError {
  override name = 'GpuOutOfMemoryError';
}

/** The GPU device was lost (driver reset, tab backgrounded too long, another fatal error). */
export class DeviceLostError extends EngineError {
  override name = 'DeviceLostError';
}

/** An operation needs a loaded model. */
export class NoModelLoadedError extends EngineError {
  override name = 'NoModelLoadedError';
}

/** The engine is busy with another load or generation. */
export class EngineBusyError extends EngineError {
  override name = 'EngineBusyError';
}

/** A cached model copy in IndexedDB is damaged: a chunk failed its checksum, is short, or is missing. */
export class CacheCorruptError extends EngineError {
  override name = 'CacheCorruptError';
}

/** A download stopped part-way (network error or server gone); what arrived is cached and the next load resumes. */
export class DownloadInterruptedError extends EngineError {
  override name = 'DownloadInterruptedError';
}

/** Writing a downloaded chunk to IndexedDB failed (storage quota exceeded, private mode, browser refused). */
export class CacheWriteError extends EngineError {
  override name = 'CacheWriteError';
}

/** The user cancelled a load: partial GPU buffers are freed, chunks cached so far stay for a resume. */
export class LoadCancelledError extends EngineError {
  override name = 'LoadCancelledError';
}

/**
 * The engine worker died or errored (a crash, an `error` or `messageerror` event, or it was terminated). Every
 * call pending on it fails with this error, and so does every later call until the engine is restarted.
 */
export class WorkerCrashedError extends EngineError {
  override name = 'WorkerCrashedError';
}

/** The model's logits held NaN or ±Inf: generation stops there (the text so far is kept; the engine stays usable). */
export class NonFiniteLogitsError extends EngineError {
  override name = 'NonFiniteLogitsError';
  /** The 1-based index, in the reply, of the token whose logits were not finite. */
  readonly tokenIndex: number;
  constructor(tokenIndex: number) {
    super(`The model produced NaN/Inf logits (at token ${tokenIndex}). Try f32 weights or another KV mode.`);
    this.tokenIndex = tokenIndex;
  }
}

/**
 * The memory plan refused a load before anything was allocated: the weights, activations and KV cache at the
 * chosen context do not fit the GPU's limits or the user's budget. The message says what would fit.
 */
export class MemoryPlanError extends EngineError {
  override name = 'MemoryPlanError';
  /** What would fit: the largest context in the chosen mode, stronger KV modes, quantized weights. */
  readonly fits: MemoryPlanFits;
  constructor(message: string, fits: MemoryPlanFits) {
    super(message);
    this.fits = fits;
  }
}

/** The alternatives a MemoryPlanError lists (absent = that change does not help). */
export interface MemoryPlanFits {
  /** The largest context (tokens) that fits with the chosen KV mode and weights. */
  contextTokens?: number;
  /** Stronger KV modes with the largest context each fits. */
  kvModes?: Array<{ mode: string; contextTokens: number }>;
  /** Weight storage choices that fit, with their bytes. */
  weights?: Array<{ dtype: 'q8' | 'q4'; bytes: number }>;
}
