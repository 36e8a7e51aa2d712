/**
 * GPU allocation failures as named errors. WebGPU reports a failed createBuffer (out of memory, or a size over
 * a limit) not by throwing but through error scopes, asynchronously, leaving an invalid buffer that kernels
 * would read as garbage. Every allocation phase (weights upload, KV cache and activations with their first
 * use, KV growth) runs inside {@link withGpuErrors}, which turns such a report into GpuOutOfMemoryError.
 */
import { EngineError, GpuOutOfMemoryError } from '../errors';

const ADVICE = 'Try a smaller model, quantized weights (q8/q4), a stronger KV compression mode, or a shorter context.';

/**
 * Run `fn` inside 'out-of-memory' and 'validation' error scopes and wait for their verdict. A reported error
 * becomes GpuOutOfMemoryError naming `what` (after `onError`, which frees what `fn` allocated); an exception
 * from `fn` propagates (a non-engine one wrapped the same way when a scope also reported).
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
  const reported = oom ?? validation;
  if (thrown && (thrown instanceof EngineError || !reported)) throw thrown;
  if (!reported) return result as T;
  onError?.(result);
  const kind = oom ? 'ran out of memory' : 'rejected an allocation';
  throw new GpuOutOfMemoryError(`The GPU ${kind} while allocating ${what}: ${reported.message.split('\n')[0]}. ${ADVICE}`);
}
