/**
 * How weights will be stored on the GPU, planned before any weight is read: the bytes each choice takes
 * (f16/f32 floats, Q8_0 or the q4 mix of blocks on load, a GGUF file's own blocks), and, when the user set a memory
 * limit for weights and left the storage on `auto`, the lightest-loss choice that fits, with a notice saying
 * so. Nothing fitting is an error that says what would. Pure: no GPU.
 */
import { GpuOutOfMemoryError } from '../errors';
import { rowBytes, type QuantType } from '../gpu/block-types';
import type { OnLoadQuant } from './on-load-quant';
import { onLoadQuantType } from './on-load-quant';

/** One weight as the source stores it: floats (converted on load) or blocks of a GGUF type (kept). */
export interface PlannedTensor {
  rows: number;
  cols: number;
  stored: 'float' | QuantType;
  /** A matrix q4 stores with more bits (on-load-quant's isSensitiveMatrix). */
  sensitive?: boolean;
}

/** The plan: storage choices and the bytes they take. */
export interface WeightPlan {
  floatDtype: 'f32' | 'f16';
  quant?: OnLoadQuant;
  bytes: number;
  /** Set when the plan chose quantization itself to fit the limit. */
  notice?: string;
}

/** GPU bytes of `tensors` stored with float dtype `floatDtype` and on-load quantization `quant`. */
export function plannedBytes(tensors: readonly PlannedTensor[], floatDtype: 'f32' | 'f16', quant?: OnLoadQuant): number {
  let total = 0;
  for (const t of tensors) {
    let bytes: number;
    if (t.stored !== 'float') bytes = rowBytes(t.stored, t.cols) * t.rows;
    else {
      const q = quant && t.rows > 1 ? onLoadQuantType(quant, t.cols, t.sensitive) : null;
      bytes = q ? rowBytes(q, t.cols) * t.rows : t.rows * t.cols * (floatDtype === 'f16' ? 2 : 4);
    }
    total += Math.ceil(bytes / 4) * 4;
  }
  return total;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : 0)} MiB`;

/**
 * Plan storage for `choice` (the load option). With a `limitBytes` and `auto`, an over-limit f16/f32 plan
 * becomes q8, then q4, with a notice; an explicit choice over the limit, or nothing fitting, throws
 * GpuOutOfMemoryError naming the sizes and what to pick.
 */
export function planWeights(tensors: readonly PlannedTensor[], choice: 'auto' | 'f32' | 'f16' | OnLoadQuant | undefined, floatDtype: 'f32' | 'f16', limitBytes?: number): WeightPlan {
  const quant = choice === 'q8' || choice === 'q4' ? choice : undefined;
  const bytes = plannedBytes(tensors, floatDtype, quant);
  if (!limitBytes || bytes <= limitBytes) return { floatDtype, quant, bytes };
  const options = (['q8', 'q4'] as const).map((q) => ({ q, bytes: plannedBytes(tensors, floatDtype, q) }));
  const fits = options.find((o) => o.bytes <= limitBytes);
  if ((choice ?? 'auto') === 'auto' && fits) {
    return {
      floatDtype,
      quant: fits.q,
      bytes: fits.bytes,
      notice: `The weights take ${mib(bytes)} as ${floatDtype}, over the ${mib(limitBytes)} set for weights, so they were quantized to ${fits.q} on load (${mib(fits.bytes)}). Raise the limit or choose f16 to load them unquantized.`,
    };
  }
  const lightest = options[options.length - 1];
  const hint = fits ? `Choose ${fits.q} (${mib(fits.bytes)}) or "auto", or raise the limit.` : `Even q4 takes ${mib(lightest.bytes)}: pick a smaller model or a more quantized file, or raise the limit.`;
  throw new GpuOutOfMemoryError(`The weights take ${mib(bytes)} as ${quant ?? floatDtype}, over the ${mib(limitBytes)} set for weights. ${hint}`);
}
