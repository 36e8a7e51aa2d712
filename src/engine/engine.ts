/**
 * Engine lifecycle: load a model from a source onto the device, generate, abort, report, unload.
 * Runs wherever WebGPU is: in the app's dedicated Worker, and in Node (Dawn) for tests and benchmarks.
 */
import { DeviceLostError, EngineBusyError, LoadCancelledError, NoModelLoadedError } from '../errors';
import { acquireDevice, type GpuContext } from '../gpu/device';
import { PipelineCache } from '../gpu/pipelines';
import type { ShaderVariant } from '../gpu/shader-assembly';
import { createKvCache, fullPrecisionKvDtype } from '../kv/factory';
import type { KvShape } from '../kv/types';
import type { ModelConfig } from '../model/config';
import { withGenerationDefaults } from '../model/generation-config';
import { LlamaModel } from '../model/llama';
import { isGgufFile, sourceFromSpec, type ModelSource, type ModelSourceSpec } from '../model/source';
import type { ChatTokenizer } from '../model/tokenizer';
import type {
  ChatMessage,
  ContextEvent,
  DeviceRecoveryEvent,
  EngineApi,
  EngineStats,
  GenerateParams,
  GenerateResult,
  KvModeBenchRequest,
  KvModeBenchResult,
  KvModeSpec,
  LoadOptions,
  LoadProgress,
  ModelInfo,
  QualityResult,
  QualityTask,
  SpeedRow,
  TokenEvent,
} from '../worker/api';
import { measureSpeed } from './benchmark';
import { describeSpec, engineStats, type Loaded } from './loaded';
import { dispatchCountsOf, kvModeSpeedOf, qualityOf, withModeRestored } from './measurements';
import { loadModelParts } from './model-loader';
import type { ReferenceMemo } from './quality';
import { runGeneration } from './generation';
import { CacheContents } from './cache-contents';
import { CacheBuilder, type CacheRequest } from './cache-builder';
import { planBudget } from './context-window';
import { kvBytesAt } from './kv-sizing';
import { PromptStructure } from './prompt-structure';
import { refillHeld } from './refill';
import { withGpuErrors } from '../gpu/error-scopes';
import { awaitLossReport, DeviceRecovery, lostDuringReply, whenIdle, type RecoveryPlan } from './device-recovery';

import { DEFAULT_PREFILL_CHUNK } from './memory-plan';

/** The engine. One model at a time; one operation at a time. */
export class Engine implements EngineApi {
  private gpu: GpuContext | null = null;
  private pipelines: PipelineCache | null = null;
  private loaded: Loaded | null = null;
  private busy: 'load' | 'generate' | null = null;
  private abortRequested = false;
  /** Aborts the running load (cancelLoad). */
  private loadController: AbortController | null = null;
  private lostError: DeviceLostError | null = null;
  /** Reference logits of the last divergence quality task (reused across the modes compared on the same ids). */
  private readonly referenceMemo: { current: ReferenceMemo | null } = { current: null };
  private deviceKey = '';
  private readonly caches = new CacheBuilder();
  /** Prompt tokens dispatched in prefill steps since the model loaded (EngineStats.prefillTokensDispatched). */
  private prefillTokens = 0;
  /** What the last load read, and how: a device loss reloads it from there. */
  private lastLoad: { spec: ModelSourceSpec | ModelSource; options: LoadOptions } | null = null;
  private readonly recovery = new DeviceRecovery();

  /** `gpuEntry` is navigator.gpu in browsers, or Dawn's `create([])` in Node. */
  constructor(private readonly gpuEntry?: GPU) {}

  private async device(options: LoadOptions): Promise<GpuContext> {
    const allowF16 = options.weightDtype !== 'f32' || options.kvDtype === 'f16';
    const allowSubgroups = options.useSubgroups ?? true;
    const schedule = options.kernelSchedule ?? 'auto';
    const key = `${allowF16}|${allowSubgroups}|${schedule}|${JSON.stringify(options.deviceLimits ?? {})}`;
    if (this.gpu && !this.lostError && this.deviceKey === key) return this.gpu;
    this.gpu?.destroy();
    this.lostError = null;
    this.gpu = await acquireDevice(this.gpuEntry, {
      allowF16,
      allowSubgroups,
      limits: options.deviceLimits,
      schedule,
      onLost: (err) => this.deviceLost(err),
    });
    this.deviceKey = key;
    this.pipelines = new PipelineCache(this.gpu.device);
    return this.gpu;
  }

  /** Load a model: config first (validated before any download), then tokenizer, then weights. */
  async load(spec: ModelSourceSpec | ModelSource, options: LoadOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    await this.recovery.settled();
    return this.loadModel(spec, options, onProgress);
  }

  private async loadModel(spec: ModelSourceSpec | ModelSource, options: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    if (this.busy) throw new EngineBusyError(`The engine is busy (${this.busy}). Wait for it to finish or press Stop.`);
    this.busy = 'load';
    const controller = new AbortController();
    this.loadController = controller;
    const signal = controller.signal;
    try {
      this.unloadModel();
      const source = 'text' in spec ? spec : sourceFromSpec(spec, signal);
      const file = ('text' in spec ? undefined : spec.file) ?? options.file;
      const parts = await loadModelParts(source, isGgufFile(file) ? file : undefined, options, () => this.device(options), onProgress, signal);
      const { config, tokenizer, weights } = parts;
      const gpu = this.gpu as GpuContext;
      const kvDtype = fullPrecisionKvDtype(gpu.caps, options.kvDtype);
      const variant: ShaderVariant = { weight: parts.floatDtype, kv: kvDtype, subgroups: gpu.caps.subgroups };
      const maxStep = Math.max(1, Math.min(options.prefillChunk ?? DEFAULT_PREFILL_CHUNK, config.maxPositions));
      const shape: KvShape = { numLayers: config.numLayers, numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim, maxTokens: config.maxPositions, maxStepTokens: maxStep };
      const kvMode = options.kvMode ?? { mode: 'full' };
      let model: LlamaModel | null = null;
      const kv = createKvCache(gpu.device, gpu.caps, shape, kvMode, kvDtype);
      try {
        model = await withGpuErrors(gpu.device, 'the activations and KV cache', async () => {
          const m = new LlamaModel(gpu, this.pipelines as PipelineCache, config, weights, kv, variant, maxStep, options.allLogits ? maxStep : 1);
          onProgress?.({ phase: 'compile', bytesDone: weights.bytes, bytesTotal: weights.bytes });
          await this.warmUp(m, config);
          return m;
        }, (m) => m?.destroy());
        if (signal.aborted) throw new LoadCancelledError('cancelled');
      } catch (err) {
        model?.destroy();
        kv.destroy();
        weights.destroy();
        throw err;
      }
      const info: ModelInfo = {
        label: source.label,
        architecture: config.architecture,
        numLayers: config.numLayers,
        hiddenSize: config.hiddenSize,
        vocabSize: config.vocabSize,
        maxPositions: config.maxPositions,
        weightDtype: weights.dtypeSummary,
        weightFormat: parts.format,
        ...(parts.notice ? { weightNotice: parts.notice } : {}),
        ...(parts.contextNotice ? { contextNotice: parts.contextNotice } : {}),
        ...(source.storageNotice ? { cacheNotice: source.storageNotice } : {}),
        weightBytes: weights.bytes,
        adapter: gpu.summary(),
        hasChatTemplate: tokenizer.hasChatTemplate,
        generationDefaults: parts.generationDefaults,
        eosTokenIds: [...tokenizer.eosTokenIds],
      };
      this.loaded = { config, tokenizer, weights, model, info, contents: new CacheContents(), structure: new PromptStructure(tokenizer), shape, kvDtype, kvMode, userMode: kvMode };
      this.prefillTokens = 0;
      this.lastLoad = { spec, options: { ...options, ...(file ? { file } : {}) } };
      onProgress?.({ phase: 'ready', bytesDone: weights.bytes, bytesTotal: weights.bytes });
      return info;
    } catch (err) {
      // Whatever a cancel broke (a fetch, a chunk read, an upload) reads as the cancel; the buffers are freed.
      if (signal.aborted) throw new LoadCancelledError(`Loading ${'text' in spec ? spec.label : describeSpec(spec)} was cancelled. Chunks cached so far stay: load it again to resume.`);
      throw err;
    } finally {
      this.busy = null;
      if (this.loadController === controller) this.loadController = null;
    }
  }

  /** Cancel the running load: its fetches abort, it stops before the next tensor, and `load` rejects with LoadCancelledError. */
  cancelLoad(): void {
    this.loadController?.abort();
  }

  /** Compile the decode pipelines and surface WGSL errors now rather than at the first prompt. */
  private async warmUp(model: LlamaModel, config: ModelConfig): Promise<void> {
    await model.forward([config.bosTokenId ?? 0], 'token');
    await (this.pipelines as PipelineCache).checkCompilation();
    model.kv.reset();
  }

  /**
   * Generate a completion of a prompt, or the assistant's reply to a chat, streaming tokens. Under a memory
   * budget (params.kvBudget) the mode may be escalated (or step back down to the user's mode) and a full cache
   * evicts tokens (in place where the layout can; params.kvBudget.eviction chooses which), keeping the system
   * prompt and the template's role markers; `onContext` hears each such event. Sampling fields left undefined
   * take the model's generation defaults (ModelInfo.generationDefaults).
   */
  async generate(
    input: string | ChatMessage[],
    requested: GenerateParams = {},
    onToken?: (t: TokenEvent) => void,
    onContext?: (e: ContextEvent) => void,
  ): Promise<GenerateResult> {
    await this.recovery.settled();
    if (this.lostError) throw this.lostError;
    const loaded = this.loaded;
    if (!loaded) throw new NoModelLoadedError('No model is loaded. Pick a model and press Load first.');
    if (this.busy) throw new EngineBusyError(`The engine is busy (${this.busy}). Wait for it to finish or press Stop.`);
    const params = withGenerationDefaults(requested, loaded.info.generationDefaults);
    this.busy = 'generate';
    this.abortRequested = false;
    try {
      const promptIds = typeof input === 'string' ? loaded.tokenizer.encodeText(input) : loaded.tokenizer.encodeChat(input);
      const maxContext = loaded.config.maxPositions;
      const needed = Math.min(promptIds.length + (params.maxNewTokens ?? 256), maxContext);
      const gpu = this.gpu as GpuContext;
      const budget = params.kvBudget;
      const saliency = budget?.eviction === 'saliency';
      const plan = planBudget(loaded.kvMode, needed, maxContext, budget, (spec, tokens) => kvBytesAt(gpu.caps, loaded.shape, spec, loaded.kvDtype, tokens, { saliency }), loaded.userMode);
      for (const e of plan.events) onContext?.(e);
      this.useCache(loaded, { spec: plan.spec, cap: plan.limitTokens, saliency, reserved: budget !== undefined });
      // Only a budget evicts before the context is full, but the context's own slide keeps them too.
      const protectedRanges = typeof input === 'string' ? [] : loaded.structure.protectedRanges(input, promptIds);
      const emit = params.streamStats && onToken ? (t: TokenEvent) => onToken({ ...t, stats: this.stats() }) : onToken;
      const result = await runGeneration({
        model: loaded.model,
        tokenizer: loaded.tokenizer,
        contents: loaded.contents,
        promptIds,
        protectedRanges,
        params,
        onToken: emit,
        shouldStop: () => this.abortRequested || this.lostError !== null,
        limitTokens: plan.limitTokens,
        sinkTokens: budget?.sinkTokens,
        eviction: budget?.eviction,
        onContext,
        onPrefill: (n) => (this.prefillTokens += n),
      });
      if (this.lostError) throw this.lostError;
      return { ...result, contextEvents: [...plan.events, ...(result.contextEvents ?? [])] };
    } catch (err) {
      // A failed map or submit can come before the loss that caused it is reported.
      if (!this.lostError && this.gpu) await awaitLossReport(this.gpu.device.lost);
      if (this.lostError) throw lostDuringReply(this.lostError);
      // A failed step leaves the cache in an unknown state: start the next request from scratch.
      loaded.model.kv.reset();
      loaded.contents.clear();
      throw err;
    } finally {
      this.busy = null;
    }
  }

  /**
   * Make the cache what the turn asks (mode, capacity cap, saliency, reserved under a budget), rebuilding it
   * (empty: the turn's prefill refills it) when it is not; the old cache is freed before the new one is built.
   */
  private useCache(loaded: Loaded, want: CacheRequest): void {
    if (this.caches.serves(loaded.model.kv, loaded.kvMode, loaded.shape.maxTokens, want)) return;
    loaded.model.kv.destroy();
    loaded.model.replaceKv(this.caches.build(this.gpu as GpuContext, loaded.shape, loaded.kvDtype, want));
    loaded.contents.clear();
    loaded.kvMode = want.spec;
  }

  /**
   * Switch the KV cache layout mid-chat: build the new cache, then re-prefill every token the old one held at
   * its position, so the conversation continues unchanged in the new mode. This becomes the user's mode.
   */
  async setKvMode(spec: KvModeSpec): Promise<EngineStats> {
    await this.recovery.settled();
    if (this.lostError) throw this.lostError;
    const loaded = this.loaded;
    if (!loaded) throw new NoModelLoadedError('No model is loaded. Pick a model and press Load first.');
    if (this.busy) throw new EngineBusyError(`The engine is busy (${this.busy}). Wait for it to finish or press Stop.`);
    this.busy = 'generate';
    const { model, contents } = loaded;
    try {
      // The capacity cap of a memory budget carries over; the next turn re-plans it for the new mode.
      const now = this.caches.describe(model.kv, loaded.shape.maxTokens);
      // The held ids are in `contents`: the old cache can go before the new one is allocated.
      const matched = contents.matches(model.kv);
      model.kv.destroy();
      if (!matched) contents.clear();
      const next = this.caches.build(this.gpu as GpuContext, loaded.shape, loaded.kvDtype, { ...now, spec });
      loaded.kvMode = spec;
      loaded.userMode = spec;
      await refillHeld(model, next, contents, (n) => (this.prefillTokens += n));
      await model.sync();
      return this.stats();
    } catch (err) {
      // The old cache is gone; the next generate re-prefills from the chat text, so nothing is lost.
      model.kv.reset();
      contents.clear();
      throw this.lostError ?? err;
    } finally {
      this.busy = null;
    }
  }

  /** Stop the running generation after the current step. */
  abort(): void {
    this.abortRequested = true;
  }

  /** Memory and cache statistics from real allocation sizes. */
  stats(): EngineStats {
    return engineStats(this.loaded, this.prefillTokens);
  }

  /**
   * Run a measurement on the loaded model: refused while the device is lost, nothing is loaded or another
   * operation runs; the chat's cache bookkeeping is dropped first. `exclusive` marks the engine busy meanwhile.
   */
  private async measuring<T>(fn: (loaded: Loaded, gpu: GpuContext) => Promise<T> | T, exclusive = true): Promise<T> {
    if (this.lostError) throw this.lostError;
    const loaded = this.loaded;
    if (!loaded) throw new NoModelLoadedError('No model is loaded. Pick a model and press Load first.');
    if (this.busy) throw new EngineBusyError(`The engine is busy (${this.busy}).`);
    if (exclusive) this.busy = 'generate';
    try {
      return await fn(loaded, this.gpu as GpuContext);
    } finally {
      if (exclusive) this.busy = null;
    }
  }

  /** Measure prefill/decode speed at each context length; the cache is left empty. */
  async benchmark(contexts: number[], decodeTokens: number): Promise<SpeedRow[]> {
    return this.measuring((l, gpu) => {
      l.contents.clear();
      return measureSpeed(l.model, contexts, decodeTokens, gpu);
    });
  }

  /**
   * Dispatches of one decode step in each KV mode (plans are recorded, nothing runs), at a cache of
   * `tokens` positions; the loaded mode's empty cache is restored afterwards.
   */
  async dispatchCounts(modes: Array<{ label: string; spec: KvModeSpec }>, tokens = 512): Promise<Array<{ kvMode: string; dispatchesPerStep: number }>> {
    return this.measuring((l, gpu) => withModeRestored(l, gpu, () => dispatchCountsOf(l, gpu, modes, tokens), () => !this.lostError), false);
  }

  /** Per-KV-mode decode speed and attention GPU time; afterwards the cache is empty, in the loaded mode again. */
  async benchmarkKvModes(request: KvModeBenchRequest): Promise<KvModeBenchResult> {
    return this.measuring((l, gpu) => withModeRestored(l, gpu, () => kvModeSpeedOf(l, gpu, request), () => !this.lostError));
  }

  /** Run one quality measurement on a fresh cache of the task's KV mode; the chat history is dropped. */
  async measureQuality(task: QualityTask): Promise<QualityResult> {
    return this.measuring(
      async (l, gpu) => {
        try {
          return await qualityOf(l, gpu, task, () => this.stats(), this.referenceMemo);
        } catch (err) {
          l.model.kv.reset();
          throw this.lostError ?? err;
        }
      },
      task.kind !== 'bytes',
    );
  }

  /** The loaded model, for tests and benchmarks that drive steps directly. */
  get model(): LlamaModel | null {
    return this.loaded?.model ?? null;
  }

  /** The loaded tokenizer. */
  get tokenizer(): ChatTokenizer | null {
    return this.loaded?.tokenizer ?? null;
  }

  private unloadModel(): void {
    if (!this.loaded) return;
    this.referenceMemo.current = null;
    this.loaded.model.destroy();
    this.loaded.weights.destroy();
    this.loaded = null;
  }

  /**
   * An unexpected loss: capture what the cache held and how the model was loaded; once the operation in flight
   * has ended, free the lost model and reload it on a new device with its cache refilled.
   */
  private deviceLost(err: DeviceLostError): void {
    this.lostError = err;
    const l = this.loaded;
    const last = this.lastLoad;
    if (!l || !last) return;
    const cache = { ...this.caches.describe(l.model.kv, l.shape.maxTokens), spec: l.kvMode };
    const plan: RecoveryPlan = { spec: last.spec, options: last.options, cache, userMode: l.userMode, contents: l.contents.clone() };
    this.recovery.start(() => this.recover(plan));
  }

  private async recover(plan: RecoveryPlan): Promise<{ tokensRestored: number; kvMode: string }> {
    // Until it ends, the operation in flight may still grow the lost model's buffers: free them after it.
    await whenIdle(() => this.busy === null);
    this.unloadModel();
    if (this.recovery.cancelled) throw new Error('unloaded');
    await this.loadModel(plan.spec, { ...plan.options, kvMode: plan.userMode });
    const l = this.loaded as Loaded;
    l.model.kv.destroy();
    await refillHeld(l.model, this.caches.build(this.gpu as GpuContext, l.shape, l.kvDtype, plan.cache), plan.contents, (n) => (this.prefillTokens += n));
    await l.model.sync();
    Object.assign(l, { contents: plan.contents, kvMode: plan.cache.spec, userMode: plan.userMode });
    return { tokensRestored: plan.contents.held, kvMode: l.model.kv.mode };
  }

  /** Hear each recovery from an unexpected device loss. */
  watchDevice(listener: (e: DeviceRecoveryEvent) => void): void {
    this.recovery.watch(listener);
  }

  /** Test hook: destroy the device behind the engine's back, as a driver reset would. */
  debugLoseDevice(): void {
    this.gpu?.device.destroy();
  }

  /** Free the model and the device. */
  async unload(): Promise<void> {
    this.recovery.cancel();
    if (this.busy === 'generate') this.abort();
    await this.recovery.settled();
    this.unloadModel();
    this.gpu?.destroy();
    this.gpu = null;
    this.pipelines = null;
  }
}

