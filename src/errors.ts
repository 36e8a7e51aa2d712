/**
 * Named, user-facing errors. Each carries a message that says what happened and what to do.
 * They cross the worker boundary through comlink, which keeps `name` and `message`. Each class spells out
 * its `name`: minified production bundles rename classes, so `new.target.name` would read e.g. "M".
 */

/** Base class: every error the engine raises on purpose. */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
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
