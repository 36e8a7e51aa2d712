/**
 * The engine's measurements on a loaded model: dispatch counts and decode speed per KV mode, and the quality
 * tasks of `npm run eval`. Each builds the caches it measures and drops the chat's cache bookkeeping; the
 * engine (engine.ts) guards them (loaded, not busy, device alive).
 */
import type { GpuContext } from '../gpu/device';
import { createKvCache } from '../kv/factory';
import type { KvModeBenchRequest, KvModeBenchResult, KvModeSpec, QualityResult, QualityTask, EngineStats } from '../worker/api';
import { measureKvModeSpeed } from './benchmark';
import type { Loaded } from './loaded';
import { measureAllocation, runDivergenceTask, runQualityTask, type ModeCacheOptions, type ReferenceMemo } from './quality';

/** A fresh cache of `spec` for the loaded model (capped at `o.cap` slots, with saliency tracking when asked). */
function cacheFor(l: Loaded, gpu: GpuContext, spec: KvModeSpec, o: ModeCacheOptions = {}) {
  const shape = o.cap === undefined ? l.shape : { ...l.shape, maxTokens: o.cap };
  return createKvCache(gpu.device, gpu.caps, shape, spec, l.kvDtype, { saliency: o.saliency ?? false });
}

/** Run `fn`, then give the model an empty cache of the loaded mode again (unless `restore` says not to: a lost device). */
export async function withModeRestored<T>(l: Loaded, gpu: GpuContext, fn: () => Promise<T> | T, restore: () => boolean): Promise<T> {
  try {
    l.contents.clear();
    return await fn();
  } finally {
    if (restore()) l.model.replaceKv(cacheFor(l, gpu, l.kvMode));
  }
}

/** Dispatches of one decode step in each mode, at a cache reserved to `tokens` positions (nothing runs). */
export function dispatchCountsOf(l: Loaded, gpu: GpuContext, modes: Array<{ label: string; spec: KvModeSpec }>, tokens: number): Array<{ kvMode: string; dispatchesPerStep: number }> {
  return modes.map(({ label, spec }) => {
    l.model.replaceKv(cacheFor(l, gpu, spec));
    l.model.kv.reserve(Math.min(tokens, l.config.maxPositions));
    return { kvMode: label, dispatchesPerStep: l.model.dispatchesPerStep(1) };
  });
}

/** Decode speed and attention GPU time per mode (src/engine/benchmark.ts). */
export function kvModeSpeedOf(l: Loaded, gpu: GpuContext, request: KvModeBenchRequest): Promise<KvModeBenchResult> {
  return measureKvModeSpeed(l.model, gpu, request, (spec) => l.model.replaceKv(cacheFor(l, gpu, spec)), (line) => console.log(`[kv-bench] ${line}`));
}

/** One quality task, each on fresh caches of its modes (src/engine/quality.ts); 'bytes' builds a cache and runs nothing. */
export async function qualityOf(l: Loaded, gpu: GpuContext, task: QualityTask, stats: () => EngineStats, memo: { current: ReferenceMemo | null }): Promise<QualityResult> {
  if (task.kind === 'bytes') {
    return { kind: 'bytes', kv: measureAllocation(createKvCache(gpu.device, gpu.caps, l.shape, task.kvMode, task.kvDtype), l.shape, task.tokens) };
  }
  l.contents.clear();
  const useMode = (spec: KvModeSpec, o: ModeCacheOptions = {}) => {
    l.model.replaceKv(cacheFor(l, gpu, spec, o));
    l.kvMode = spec;
  };
  if (task.kind === 'divergence') return runDivergenceTask(l.model, task, useMode, stats, memo);
  useMode(task.kvMode);
  return runQualityTask(l.model, l.tokenizer, task, stats);
}
