/**
 * The Llama-family decoder (Llama, Mistral, Qwen2, Qwen3, SmolLM2) on the GPU. `recordForward` reads like
 * the model's math; it is recorded once per step shape into a Plan and replayed.
 */
import { GpuOutOfMemoryError } from '../errors';
import { BufferGroup } from '../gpu/buffers';
import type { GpuContext } from '../gpu/device';
import { withGpuErrors } from '../gpu/error-scopes';
import type { PipelineCache } from '../gpu/pipelines';
import { Plan, Recorder, type StepProfile } from '../gpu/plan';
import type { ShaderVariant } from '../gpu/shader-assembly';
import { StepUniform } from '../gpu/uniforms';
import { vectorBuffer, type WeightMatrix } from '../gpu/tensor';
import { FusedDecode } from '../kernels/fused-decode';
import { gatedProjection, linear, normedProjection } from '../kernels/linear';
import { argmax, embed, splitQkvRope } from '../kernels/pointwise';
import { FullKvCache } from '../kv/full-cache';
import type { KvCache } from '../kv/types';
import { Activations, MAX_QUEUED_STEPS, type LogitsMode } from './activations';
import type { ModelConfig } from './config';
import { ropeInverseFrequencies } from './rope-frequencies';
import type { ModelWeights } from './weights';

/** Plans kept: step shapes × the caches' step keys (e.g. decode steps with and without a flush). */
const MAX_CACHED_PLANS = 16;
/** GPUMapMode.READ, spelled out so this module loads before GPU globals exist. */
const MAP_READ = 1;

/** What one step returns: the greedy next token, and logits when asked for. */
export interface StepOutput {
  /** argmax of the last position's logits (when logits were computed). */
  nextToken: number;
  /** f32 [rows, vocab] when the step was asked to read logits back. */
  logits?: Float32Array;
}

/** The vectors [b0; b1; b2] in one new buffer owned by `owner` (copied on the GPU), or undefined without biases. */
function concatBiases(device: GPUDevice, owner: BufferGroup, name: string, biases: Array<WeightMatrix | undefined>): WeightMatrix | undefined {
  if (biases.every((b) => !b)) return undefined;
  if (!biases.every((b): b is WeightMatrix => Boolean(b))) throw new Error(`${name}: q, k and v biases must all be present`);
  const dtype = biases[0].dtype;
  const bytes = dtype === 'f16' ? 2 : 4;
  const cols = biases.reduce((n, b) => n + b.cols, 0);
  const buffer = owner.create(name, cols * bytes);
  const encoder = device.createCommandEncoder({ label: name });
  let offset = 0;
  for (const b of biases) {
    const size = b.cols * bytes;
    if (size % 4 !== 0 || offset % 4 !== 0) throw new Error(`${name}: bias of ${b.cols} ${dtype} values is not a whole number of words`);
    encoder.copyBufferToBuffer(vectorBuffer(b), 0, buffer, offset, size);
    offset += size;
  }
  device.queue.submit([encoder.finish()]);
  return { name, rows: 1, cols, dtype, parts: [{ buffer, rowStart: 0, rows: 1 }] };
}

/** Host-side milliseconds of the last step: recording/encoding, submit, waiting for the GPU, copying the result. */
export interface StepHostTimes {
  encodeMs: number;
  submitMs: number;
  waitMs: number;
  readbackMs: number;
}

/** Greedy steps submitted by LlamaModel.queueGreedy; tokens() waits for them and reads the ids they chose. */
export interface QueuedGreedy {
  readonly steps: number;
  tokens(): Promise<number[]>;
}

/** A loaded model bound to a device, a KV cache and its scratch space. */
export class LlamaModel {
  private readonly act: Activations;
  private readonly step: StepUniform;
  private readonly fixed: BufferGroup;
  private readonly invFreq: GPUBuffer /* f32 [headDim / 2] */;
  /** Per layer: [bq; bk; bv] in one buffer for the fused projection (Qwen2), or undefined. */
  private readonly qkvBias: Array<WeightMatrix | undefined>;
  private readonly plans = new Map<string, Plan>();
  /** Which of the two token readback buffers the next queued batch copies into. */
  private readbackTurn = 0;
  /** The fused one-token step (packed weights), null where it does not apply, undefined until first asked. */
  private fused: FusedDecode | null | undefined;
  /** Run one-token steps through the fused decode kernel where it applies (tests and benchmarks turn it off). */
  fusedDecode = true;
  /** Benchmarks only: how the next steps are profiled (timestamps or repeated attention); null normally. */
  profile: StepProfile | null = null;
  /** Where the host time of the last step went (benchmarks read it after each step). */
  readonly lastStepTimes: StepHostTimes = { encodeMs: 0, submitMs: 0, waitMs: 0, readbackMs: 0 };

  constructor(
    private readonly gpu: GpuContext,
    private readonly pipelines: PipelineCache,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    private cache: KvCache,
    private readonly variant: ShaderVariant,
    /** Largest step (prefill chunk) in tokens. */
    readonly maxStepTokens: number,
    /** Rows of logits kept: 1 normally, maxStepTokens when every position's logits are wanted (tests, eval). */
    logitRows = 1,
  ) {
    this.act = new Activations(gpu.device, config, maxStepTokens, logitRows);
    this.fixed = new BufferGroup(gpu.device, 'model-constants');
    this.step = new StepUniform(gpu.device, this.fixed);
    this.invFreq = this.fixed.upload('rope.inv_freq', ropeInverseFrequencies(config));
    this.qkvBias = weights.layers.map((layer, l) => concatBiases(gpu.device, this.fixed, `L${l}.qkv_bias`, [layer.bq, layer.bk, layer.bv]));
  }

  /** The KV cache this model reads and appends to. */
  get kv(): KvCache {
    return this.cache;
  }

  /** Switch to another cache layout; the old one and every plan bound to it are freed. */
  replaceKv(next: KvCache): void {
    for (const p of this.plans.values()) p.destroy();
    this.plans.clear();
    this.cache.destroy();
    this.cache = next;
  }

  /**
   * Grow the cache to `total` slots inside GPU error scopes. A growth the GPU refuses (a buffer over a limit, or
   * out of memory) frees the whole cache, which stays usable and starts empty, and throws GpuOutOfMemoryError.
   */
  private async growKv(total: number): Promise<void> {
    try {
      await withGpuErrors(this.gpu.device, `the KV cache for ${total} tokens`, () => this.kv.reserve(total));
    } catch (err) {
      // Frees the plans and every cache buffer; a destroyed cache is empty and allocates afresh on the next reserve.
      if (err instanceof GpuOutOfMemoryError) this.replaceKv(this.cache);
      throw err;
    }
  }

  /** Bytes of activations, model constants and the fused decode step's packed weight copy (where it was built). */
  get activationBytes(): number {
    return this.act.bytes + this.fixed.bytes + (this.fused?.bytes ?? 0);
  }

  /** Record one step of `T` tokens: embeddings → decoder layers → logits. */
  private recordForward(rec: Recorder, T: number, logits: LogitsMode, pos0: number): void {
    const { numHeads: H, numKvHeads: Hk, headDim: d, vocabSize: V, rmsEps: eps } = this.config;
    const a = this.act;
    const w = this.weights;
    const normed = (gain: WeightMatrix, row = 0) => ({ x: a.x, gain, eps, scratch: a.h, row });

    embed(rec, a.ids, w.embed, a.x, T);
    w.layers.forEach((layer, l) => {
      // q|k|v = RMSNorm(x)·[Wq; Wk; Wv]ᵀ (+ biases); per-head q/k norms (Qwen3), then RoPE
      normedProjection(rec, normed(layer.attnNorm), [layer.wq, layer.wk, layer.wv], a.qkv, T, this.qkvBias[l]);
      const qkNorm = layer.qNorm && layer.kNorm ? { q: layer.qNorm, k: layer.kNorm, eps } : undefined;
      splitQkvRope(rec, a.qkv, a, this.invFreq, T, { heads: H, kvHeads: Hk, headDim: d }, qkNorm);
      // attn = softmax(q·Kᵀ/√d)·V over the cache; the cache appends this step's k, v
      rec.section('attention', () => this.kv.recordAttention(rec, l, { q: a.q, k: a.k, v: a.v, out: a.attn, partials: a.partials, tokens: T, pos0 }));
      // x = x + attn·Woᵀ
      linear(rec, a.attn, layer.wo, a.x, T, undefined, { residual: true });
      // x = x + (silu(h·Wgᵀ) ⊙ h·Wuᵀ)·Wdᵀ with h = RMSNorm(x)
      gatedProjection(rec, normed(layer.ffnNorm), layer.wGate, layer.wUp, a.gate, T, a.up);
      linear(rec, a.gate, layer.wDown, a.x, T, undefined, { residual: true });
    });
    if (logits === 'none') return;
    // logits = RMSNorm(x)·Wlmᵀ, for the last position only unless every row is wanted
    const rows = logits === 'all' ? T : 1;
    normedProjection(rec, normed(w.finalNorm, T - rows), [w.lmHead], a.logits, rows);
    argmax(rec, a.logits, V, rows - 1, a.token);
  }

  /** Whether one-token steps run now through the fused decode kernel (builds its packed weights on first ask). */
  usesFusedDecode(): boolean {
    return this.fusedPlan() !== null;
  }

  /**
   * The plan of a one-token step through the fused decode kernel, or null where the separate kernels run: fused
   * decode off, a cache other than plain `full` (or one tracking saliency), weights it cannot read, a shape over
   * the adapter's limits, or a profile that times kernel sections (the fused step has none).
   */
  private fusedPlan(): Plan | null {
    const profile = this.profile;
    if (!this.fusedDecode || (profile && !(profile.kind === 'timestamps' && profile.each))) return null;
    const layers = this.cache instanceof FullKvCache ? this.cache.fusedLayers() : null;
    if (!layers) return null;
    if (this.fused === undefined) {
      const { device, caps } = this.gpu;
      this.fused = FusedDecode.create(device, this.config, this.weights, this.variant.weight, caps, ropeInverseFrequencies(this.config));
    }
    if (!this.fused) return null;
    const key = `fused|${this.kv.generation}`;
    const fused = this.fused;
    return this.cachedPlan(key) ?? this.cachePlan(key, (rec) => fused.record(rec, { ids: this.act.ids, x: this.act.x, logits: this.act.logits, kv: layers, step: this.step.buffer }), 1);
  }

  /** The plan of a step of T tokens at pos0 (plans differ by token count, logits, the cache's step key and generation). */
  private plan(T: number, logits: LogitsMode, pos0 = this.kv.length): Plan {
    const key = `${T}|${logits}|${this.kv.stepKey(pos0, T)}|${this.kv.generation}`;
    return this.cachedPlan(key) ?? this.cachePlan(key, (rec) => this.recordForward(rec, T, logits, pos0), T);
  }

  /** The plan recorded under `key`, marked most recently used, if there is one. */
  private cachedPlan(key: string): Plan | undefined {
    const plan = this.plans.get(key);
    if (plan) {
      this.plans.delete(key);
      this.plans.set(key, plan);
    }
    return plan;
  }

  /** Record a new plan under `key`, first freeing plans of older cache generations and the least recently used. */
  private cachePlan(key: string, record: (rec: Recorder) => void, T: number): Plan {
    // Plans of an older cache generation hold bind groups to freed buffers; the rest are evicted LRU.
    for (const [k, old] of this.plans) {
      if (!k.endsWith(`|${this.kv.generation}`)) {
        old.destroy();
        this.plans.delete(k);
      }
    }
    while (this.plans.size >= MAX_CACHED_PLANS) {
      const [k, old] = this.plans.entries().next().value as [string, Plan];
      old.destroy();
      this.plans.delete(k);
    }
    const rec = new Recorder(this.gpu.device, this.pipelines, this.gpu.caps, this.variant, this.step, new BufferGroup(this.gpu.device, `plan ${key}`));
    record(rec);
    const plan = rec.finish(T);
    this.plans.set(key, plan);
    return plan;
  }

  /**
   * Run tokens at cache slots kv.length … kv.length + T − 1 (RoPE positions kv.nextPosition … + T − 1) and
   * append them to the cache. `read` chooses what comes back: nothing, the greedy token, or logits of the last
   * or every row.
   */
  async forward(tokens: number[], read: 'none' | 'token' | 'last-logits' | 'all-logits'): Promise<StepOutput> {
    const T = tokens.length;
    if (T === 0 || T > this.maxStepTokens) throw new RangeError(`step of ${T} tokens; expected 1..${this.maxStepTokens}`);
    const mode: LogitsMode = read === 'none' ? 'none' : read === 'all-logits' ? 'all' : 'last';
    if (mode === 'all' && T > this.act.logitRows) throw new RangeError(`all-logits needs logitRows >= ${T}`);
    const times = this.lastStepTimes;
    const t0 = performance.now();
    const pos0 = this.kv.length;
    const ropePos0 = this.kv.nextPosition;
    if (pos0 + T > this.kv.allocatedTokens) await this.growKv(pos0 + T);
    // A fused one-token step leaves its argmax in ids[0] instead of the token buffer.
    const fused = T === 1 && mode === 'last' ? this.fusedPlan() : null;
    const plan = fused ?? this.plan(T, mode);
    const tokenOut = fused ? this.act.ids : this.act.token;
    const device = this.gpu.device;
    device.queue.writeBuffer(this.act.ids, 0, new Uint32Array(tokens));
    this.step.write(pos0, T, ropePos0);
    const encoder = device.createCommandEncoder({ label: `step T=${T}` });
    plan.encodeStep(encoder, this.profile);
    const logitBytes = (mode === 'all' ? T : 1) * this.config.vocabSize * 4;
    if (read !== 'none') encoder.copyBufferToBuffer(tokenOut, 0, this.act.tokenReadback, 0, 4);
    if (read === 'last-logits' || read === 'all-logits') {
      encoder.copyBufferToBuffer(this.act.logits, 0, this.act.logitsReadback, 0, logitBytes);
    }
    const commands = encoder.finish();
    const t1 = performance.now();
    device.queue.submit([commands]);
    this.kv.commit(T);
    const t2 = performance.now();
    times.encodeMs = t1 - t0;
    times.submitMs = t2 - t1;
    times.waitMs = 0;
    times.readbackMs = 0;
    if (read === 'none') return { nextToken: -1 };

    // Token and logits are mapped together: one wait for the step, not one per buffer.
    const withLogits = read !== 'token';
    await Promise.all([
      this.act.tokenReadback.mapAsync(MAP_READ),
      withLogits ? this.act.logitsReadback.mapAsync(MAP_READ, 0, logitBytes) : undefined,
    ]);
    const t3 = performance.now();
    times.waitMs = t3 - t2;
    const nextToken = new Uint32Array(this.act.tokenReadback.getMappedRange())[0];
    this.act.tokenReadback.unmap();
    if (!withLogits) {
      times.readbackMs = performance.now() - t3;
      return { nextToken };
    }
    const logits = new Float32Array(this.act.logitsReadback.getMappedRange(0, logitBytes).slice(0));
    this.act.logitsReadback.unmap();
    times.readbackMs = performance.now() - t3;
    return { nextToken, logits };
  }

  /**
   * Greedy decode of `steps` tokens with one wait: feed `first`, and let each step's argmax become the next
   * step's input on the GPU (copied into the ids buffer), so every step is queued before the CPU reads the
   * tokens back. Returns the `steps` tokens chosen; the cache holds `first` and all of them but the last.
   */
  async decodeGreedy(first: number, steps: number): Promise<number[]> {
    return (await this.queueGreedy(first, steps)).tokens();
  }

  /**
   * decodeGreedy without the wait: submits the steps and returns a handle whose tokens() reads them. `first`
   * null continues from the token the last queued greedy step chose, which is still on the GPU: a batch can be
   * queued before the one before it is read (the generate loop keeps the GPU busy that way). Batches are read
   * in the order they were queued; one that is never read leaves nothing behind.
   */
  async queueGreedy(first: number | null, steps: number): Promise<QueuedGreedy> {
    if (!(steps >= 1 && steps <= MAX_QUEUED_STEPS)) throw new RangeError(`decodeGreedy: 1..${MAX_QUEUED_STEPS} steps, got ${steps}`);
    const device = this.gpu.device;
    const pos0 = this.kv.length;
    const ropePos0 = this.kv.nextPosition;
    if (pos0 + steps > this.kv.allocatedTokens) await this.growKv(pos0 + steps);
    if (first !== null) device.queue.writeBuffer(this.act.ids, 0, new Uint32Array([first]));
    // Two readback buffers in turn: this batch's copy never lands in the one the previous batch is read from.
    const readback = this.act.tokenRingReadbacks[this.readbackTurn];
    this.readbackTurn ^= 1;
    const fused = this.fusedPlan();
    if (fused && !this.profile) {
      // The fused plan is the same for every step: all steps go into one command buffer, each copying its Step
      // values from the step ring into the Step uniform first (one submit and one write instead of one per step).
      this.step.writeOneTokenSteps(this.act.stepRing, pos0, steps, ropePos0);
      const encoder = device.createCommandEncoder({ label: `decode ${steps} fused steps` });
      for (let i = 0; i < steps; i++) {
        encoder.copyBufferToBuffer(this.act.stepRing, i * StepUniform.BYTES, this.step.buffer, 0, StepUniform.BYTES);
        fused.encodeStep(encoder);
        encoder.copyBufferToBuffer(this.act.ids, 0, this.act.tokenRing, i * 4, 4);
      }
      encoder.copyBufferToBuffer(this.act.tokenRing, 0, readback, 0, steps * 4);
      device.queue.submit([encoder.finish()]);
      this.kv.commit(steps);
    } else {
      for (let i = 0; i < steps; i++) {
        const plan = fused ?? this.plan(1, 'last', pos0 + i);
        // writeBuffer is ordered with submits, so each step reads its own position.
        this.step.write(pos0 + i, 1, ropePos0 + i);
        const encoder = device.createCommandEncoder({ label: `decode step ${i + 1}/${steps}` });
        plan.encodeStep(encoder, this.profile);
        // The fused step writes its argmax into ids[0] itself.
        if (!fused) encoder.copyBufferToBuffer(this.act.token, 0, this.act.ids, 0, 4);
        encoder.copyBufferToBuffer(fused ? this.act.ids : this.act.token, 0, this.act.tokenRing, i * 4, 4);
        if (i === steps - 1) encoder.copyBufferToBuffer(this.act.tokenRing, 0, readback, 0, steps * 4);
        device.queue.submit([encoder.finish()]);
        this.kv.commit(1);
      }
    }
    return {
      steps,
      async tokens() {
        await readback.mapAsync(MAP_READ, 0, steps * 4);
        const tokens = Array.from(new Uint32Array(readback.getMappedRange(0, steps * 4).slice(0)));
        readback.unmap();
        return tokens;
      },
    };
  }

  /**
   * Evict in place: keep only the cache slots `keep` (ascending, obeying kv.evictionRules()), compacted on the
   * GPU in one submission. Kept keys keep their RoPE phase; the next token goes at kv.nextPosition.
   */
  evict(keep: readonly number[]): void {
    const device = this.gpu.device;
    const rec = new Recorder(device, this.pipelines, this.gpu.caps, this.variant, this.step, new BufferGroup(device, 'kv eviction'));
    this.kv.evict(rec, keep);
    const plan = rec.finish(0);
    const encoder = device.createCommandEncoder({ label: 'kv eviction' });
    plan.encodeStep(encoder);
    device.queue.submit([encoder.finish()]);
    // Destroying after submit is safe: WebGPU frees the keep lists once the submitted work is done.
    plan.destroy();
  }

  /** Dispatches one step of `T` tokens issues (records the plan if needed). */
  dispatchesPerStep(T: number, read: 'none' | 'token' = 'token'): number {
    const fused = T === 1 && read === 'token' ? this.fusedPlan() : null;
    return (fused ?? this.plan(T, read === 'none' ? 'none' : 'last', this.kv.length)).length;
  }

  /** Wait for all submitted GPU work (used by benchmarks). */
  async sync(): Promise<void> {
    await this.gpu.device.queue.onSubmittedWorkDone();
  }

  /** Free activations, constants, plans and the KV cache. Weights are freed by their owner. Safe to call twice. */
  destroy(): void {
    for (const p of this.plans.values()) p.destroy();
    this.plans.clear();
    this.act.destroy();
    this.fused?.destroy();
    this.fused = undefined;
    this.fixed.destroy();
    this.cache.destroy();
  }
}
