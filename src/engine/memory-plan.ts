/**
 * The memory plan, made before any weight is read: weights (as planned by model/weight-plan.ts), activations
 * and scratch (model/activations.ts sizes) and the KV cache at the chosen context in the chosen mode (the one
 * KV byte accounting, kv/sizing.ts) against the device's limits (largest buffer, largest storage binding, a
 * memory estimate) and the user's budgets. The KV layouts keep each layer's K and V in one buffer that the
 * attention kernels bind whole, so the plan also caps the context where one of those buffers would pass the
 * binding limit. A default context that does not fit is shortened to the largest that does (with a notice); a
 * chosen one, or one too short to be useful, is refused with MemoryPlanError saying what fits. Pure: no GPU.
 */
import { MemoryPlanError, type MemoryPlanFits } from '../errors';
import type { GpuCaps } from '../gpu/device';
import { kvFootprint } from '../kv/sizing';
import type { KvShape } from '../kv/types';
import { fullPrecisionKvDtype } from '../kv/factory';
import { activationSizes } from '../model/activations';
import { FUSED_MAX_WEIGHT_BYTES } from '../kernels/fused-decode';
import type { ModelConfig } from '../model/config';
import type { KvModeSpec, LoadOptions } from '../worker/api';
import { ESCALATION_LADDER, modeLabel, sameSpec } from './context-window';

/** The shortest context the plan shortens to; below it a load is refused. */
export const MIN_PLANNED_CONTEXT = 256;

/** Everything the plan weighs. */
export interface MemoryPlanInput {
  /** The model's own context (max_position_embeddings). */
  modelContext: number;
  /** The user's chosen context; absent = the model's, which may be shortened. */
  contextTokens?: number;
  weights: { bytes: number; dtype: string; alternatives: Array<{ dtype: 'q8' | 'q4'; bytes: number }> };
  /** Bytes of each activation and scratch buffer. */
  activationBuffers: number[];
  /** Bytes of the fused decode step's packed weight copy: counted with the activations, not checked against the binding limit. */
  packedWeightCopyBytes?: number;
  /** The cache's shape (maxTokens is replaced by each context tried), mode and full-precision dtype. */
  kv: { shape: KvShape; spec: KvModeSpec; dtype: 'f32' | 'f16' };
  caps: Pick<GpuCaps, 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'memoryBytes'>;
  memoryBudgetBytes?: number;
  kvBudgetBytes?: number;
}

/** What the load will allocate. */
export interface MemoryPlan {
  contextTokens: number;
  weightBytes: number;
  activationBytes: number;
  kvBytes: number;
  /** Set when the default context was shortened to fit. */
  notice?: string;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 1 : 0)} MiB`;

/** Plan a load, or throw MemoryPlanError naming what fits. */
export function planMemory(input: MemoryPlanInput): MemoryPlan {
  const { caps, kv } = input;
  const binding = Math.min(caps.maxBufferSize, caps.maxStorageBufferBindingSize);
  const memory = Math.min(input.memoryBudgetBytes ?? Infinity, caps.memoryBytes ?? Infinity);
  const memoryName = input.memoryBudgetBytes !== undefined && input.memoryBudgetBytes <= (caps.memoryBytes ?? Infinity) ? 'the memory budget' : "the GPU's estimated memory";
  const activationBytes = input.activationBuffers.reduce((s, b) => s + b, input.packedWeightCopyBytes ?? 0);
  const largestActivation = Math.max(0, ...input.activationBuffers);
  const wanted = Math.min(input.contextTokens ?? input.modelContext, input.modelContext);
  const minContext = Math.min(MIN_PLANNED_CONTEXT, wanted);

  if (largestActivation > binding) {
    throw new MemoryPlanError(
      `A ${mib(largestActivation)} activation buffer is over this GPU's ${mib(binding)} binding limit. Lower the prefill chunk, or pick a smaller model.`,
      {},
    );
  }
  const kvRoom = (weightBytes: number) => Math.min(memory - weightBytes - activationBytes, input.kvBudgetBytes ?? Infinity);
  /** The largest context ≤ `upTo` whose cache of `spec` fits `room` bytes with no buffer over the binding limit. */
  const largestContext = (spec: KvModeSpec, room: number, upTo = wanted): number => {
    if (room <= 0) return 0;
    const fits = (t: number) => {
      try {
        const f = kvFootprint(kv.shape, spec, t, kv.dtype);
        return f.largestBuffer <= binding && f.total <= room;
      } catch {
        return false;
      }
    };
    return largestFitting(fits, upTo);
  };

  const room = kvRoom(input.weights.bytes);
  const context = largestContext(kv.spec, room);
  const kvBytes = context > 0 ? kvFootprint(kv.shape, kv.spec, context, kv.dtype).total : 0;
  const plan = { weightBytes: input.weights.bytes, activationBytes, kvBytes };
  if (context >= wanted) return { contextTokens: wanted, ...plan };
  if (input.contextTokens === undefined && context >= minContext) {
    return {
      contextTokens: context,
      ...plan,
      notice:
        `The context was shortened from ${input.modelContext} to ${context} tokens: at ${wanted} tokens ${whyShort(kv, wanted, binding, room)} ` +
        `in ${modeLabel(kv.spec)} mode. A stronger KV mode or quantized weights leave room for more.`,
    };
  }

  // Refuse, saying what fits.
  const fits: MemoryPlanFits = {};
  if (context >= minContext) fits.contextTokens = context;
  const stronger = ESCALATION_LADDER.filter((rung) => !sameSpec(rung, kv.spec))
    .map((rung) => ({ mode: modeLabel(rung), contextTokens: largestContext(rung, room) }))
    .filter((m) => m.contextTokens > context && m.contextTokens >= minContext);
  if (stronger.length) fits.kvModes = stronger;
  const weights = input.weights.alternatives
    .filter((w) => w.bytes < input.weights.bytes && largestContext(kv.spec, kvRoom(w.bytes)) >= minContext)
    .map((w) => ({ dtype: w.dtype, bytes: w.bytes }));
  if (weights.length) fits.weights = weights;

  const need = input.weights.bytes + activationBytes + kvFootprintOrZero(kv, wanted);
  const what: string[] = [];
  if (fits.contextTokens) what.push(`a context of up to ${fits.contextTokens} tokens`);
  if (fits.kvModes) what.push(`a stronger KV mode (${fits.kvModes.map((m) => `${m.mode}: ${m.contextTokens} tokens`).join(', ')})`);
  if (fits.weights) what.push(`quantized weights (${fits.weights.map((w) => `${w.dtype}: ${mib(w.bytes)}`).join(', ')})`);
  const head =
    room <= 0
      ? `The weights (${mib(input.weights.bytes)} as ${input.weights.dtype}) and activations (${mib(activationBytes)}) leave no room for a KV cache in ${memoryName} (${mib(memory)}).`
      : `A ${wanted}-token context in ${modeLabel(kv.spec)} mode does not fit (about ${mib(need)} in all): ${whyShort(kv, wanted, binding, room)}.`;
  const tail = what.length ? ` What fits: ${what.join('; or ')}.` : ' Nothing fits: pick a smaller model.';
  throw new MemoryPlanError(head + tail, fits);
}

/** The largest t in [0, upTo] with fits(t) (fits holds below some bound: bytes grow with tokens). */
function largestFitting(fits: (t: number) => boolean, upTo: number): number {
  if (fits(upTo)) return upTo;
  let lo = 0;
  let hi = upTo;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

function kvFootprintOrZero(kv: MemoryPlanInput['kv'], tokens: number): number {
  try {
    return kvFootprint(kv.shape, kv.spec, tokens, kv.dtype).total;
  } catch {
    return 0;
  }
}

/** Which limit the full context passes: one buffer over the binding limit, or the bytes over the room. */
function whyShort(kv: MemoryPlanInput['kv'], tokens: number, binding: number, room: number): string {
  let f: { total: number; largestBuffer: number };
  try {
    f = kvFootprint(kv.shape, kv.spec, tokens, kv.dtype);
  } catch {
    return 'this KV mode cannot be built for the model';
  }
  if (f.largestBuffer > binding) return `one KV buffer would take ${mib(f.largestBuffer)}, over the ${mib(binding)} storage binding limit`;
  return `the KV cache would take ${mib(f.total)}, over the ${mib(Math.max(0, room))} left for it`;
}

/** Default largest prompt step (tokens per prefill dispatch); the engine and the plan share it. */
export const DEFAULT_PREFILL_CHUNK = 128;

/** What {@link planLoad} needs from a load: the model, the options, the device and the weight plan. */
export interface LoadPlanInput {
  config: ModelConfig;
  options: LoadOptions;
  caps: GpuCaps;
  /** Bytes and dtype label of the planned weights, and of the same tensors as q8 / q4. */
  weights: MemoryPlanInput['weights'];
}

/** The memory plan of a load: KV shape, mode and dtype, and activation sizes as the engine will build them. */
export function planLoad({ config, options, caps, weights }: LoadPlanInput): MemoryPlan {
  const maxStep = Math.max(1, Math.min(options.prefillChunk ?? DEFAULT_PREFILL_CHUNK, config.maxPositions));
  const shape: KvShape = { numLayers: config.numLayers, numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim, maxTokens: config.maxPositions, maxStepTokens: maxStep };
  const sizes = activationSizes(config, maxStep, options.allLogits ? maxStep : 1);
  // A small float model on a plain full cache decodes through the fused step, which keeps its own packed copy
  // of the weights (src/kernels/fused-decode.ts; counted where it fits one binding, whether or not the rest of
  // the adapter's limits let it run).
  const spec = options.kvMode ?? { mode: 'full' };
  const fusedFits = weights.bytes <= Math.min(FUSED_MAX_WEIGHT_BYTES, caps.maxBufferSize, caps.maxStorageBufferBindingSize);
  const packedWeightCopyBytes = (weights.dtype === 'f32' || weights.dtype === 'f16') && fusedFits && spec.mode === 'full' ? weights.bytes : 0;
  return planMemory({
    modelContext: config.maxPositions,
    contextTokens: options.contextTokens,
    weights,
    activationBuffers: [...Object.values(sizes), sizes.logits],
    packedWeightCopyBytes,
    kv: { shape, spec, dtype: fullPrecisionKvDtype(caps, options.kvDtype) },
    caps,
    memoryBudgetBytes: options.memoryBudgetBytes,
    kvBudgetBytes: options.kvBudgetBytes,
  });
}
