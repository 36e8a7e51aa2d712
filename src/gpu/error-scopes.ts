/**
 * GPU allocation failures as named errors. WebGPU reports a failed createBuffer (out of memory, or a size over
 * a limit) not by throwing but through error scopes, asynchronously, leaving an invalid buffer that kernels
 * would read as garbage. Every allocation phase (weights upload, KV cache and activations with their first
 * use, KV growth) runs inside {@link withGpuErrors}, which turns such a report into GpuOutOfMemoryError.
 */
import { EngineError, GpuOutOfMemoryError } from '../errors';

const ADVICE = 'Try a smaller model, quantized weights (q8/q4), a stronger KV compression mode, or a shorter context.';

/**
 * Run `fn` inside 'out-of-memory' and 'validation' error scopes and wait for their verdict. Out of memory, or a
 * validation error about a size or limit, becomes GpuOutOfMemoryError naming `what`; another validation error
 * becomes a plain Error with its message (after `onError`, which frees what `fn` allocated, either way). An
 * engine error thrown by `fn` propagates as it is.
 */
export async function withGpuErrors<T>(device: GPUDevice, what: string, fn: () => T | Promise<T>, onError?: (result: T | undefined) => void): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let thrown: unknown = null;
  try {
    result = await fn();
  } catch (err) {
    thrown = err;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  // Only validation errors about sizes and limits are allocation failures; any other is a bug, reported as such.
  const sizeError = validation && SIZE_ERROR.test(validation.message) ? validation : null;
  const reported = oom ?? sizeError;
  if (thrown && (thrown instanceof EngineError || !reported)) throw thrown;
  if (!reported) {
    if (validation) {
      onError?.(result);
      throw new Error(`GPU validation error while setting up ${what}: ${validation.message}`);
    }
    return result as T;
  }
  onError?.(result);
  const kind = oom ? 'ran out of memory' : 'rejected an allocation';
  throw new GpuOutOfMemoryError(`The GPU ${kind} while allocating ${what}: ${reported.message.split('\n')[0]}. ${ADVICE}`);
}

/** Validation messages (Dawn, Chrome) about buffer sizes and limits. */
const SIZE_ERROR = /size|limit|exceed|memory/i;
