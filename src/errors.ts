/**
 * Named, user-facing errors. Each carries a message that says what happened and what to do.
 * They cross the worker boundary through comlink, which keeps `name` and `message`.
 */

/** Base class: every error the engine raises on purpose. */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The browser (or Node binding) offers no WebGPU at all. */
export class WebGpuUnavailableError extends EngineError {}

/** A model file is malformed: truncated, inconsistent header, bad JSON. */
export class ModelFormatError extends EngineError {}

/** A required model file (config.json, tokenizer.json, weights) could not be fetched. */
export class ModelFileMissingError extends EngineError {}

/** The config names an architecture this engine does not implement. */
export class UnsupportedArchitectureError extends EngineError {}

/** A tensor uses a dtype the loader cannot convert. */
export class UnsupportedDtypeError extends EngineError {}

/** The prompt plus requested tokens do not fit in the model's context. */
export class ContextOverflowError extends EngineError {}

/** The GPU refused an allocation. */
export class GpuOutOfMemoryError extends EngineError {}

/** The GPU device was lost (driver reset, tab backgrounded too long, another fatal error). */
export class DeviceLostError extends EngineError {}

/** An operation needs a loaded model. */
export class NoModelLoadedError extends EngineError {}

/** The engine is busy with another load or generation. */
export class EngineBusyError extends EngineError {}
