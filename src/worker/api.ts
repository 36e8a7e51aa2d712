/**
 * The typed API the engine worker exposes through comlink. The main thread only ever sees these types.
 */
import type { ModelSourceSpec } from '../model/source';
import type { PositionScores } from '../engine/divergence';

/** Load-time choices. */
export interface LoadOptions {
  /**
   * Storage dtype of weights on the GPU. 'auto' = f16 when the adapter has shader-f16, else f32; 'q8' / 'q4'
   * quantize float matrices on load to ggml blocks (Q8_0; Q4_K or Q4_0), read in place by the kernels. A GGUF
   * file's quantized tensors are always kept as they are.
   */
  weightDtype?: WeightChoice;
  /** The GGUF file to read from a ModelSource passed directly (a spec names it in `file`). */
  file?: string;
  /**
   * GGUF files only. 'llama.cpp' (default): the input of each product is rounded as llama.cpp's CPU back end
   * rounds it for the weight's type in the file (8-bit blocks for quantized weights, f16 for f16 ones), so that
   * output follows llama.cpp's (bench/results/gguf-agreement.md); it costs a norm, a rounding kernel and an
   * unfused GEMV per product. 'f32': products take f32 inputs, as for safetensors models.
   */
  ggufNumerics?: 'llama.cpp' | 'f32';
  /**
   * GPU memory the weights may take. With weightDtype 'auto', weights over it are quantized on load (q8, else
   * q4) and ModelInfo.weightNotice says so; an explicit choice over it fails with GpuOutOfMemoryError.
   */
  weightBudgetBytes?: number;
  /** Use subgroup operations when the adapter has them (default true). */
  useSubgroups?: boolean;
  /** Largest number of prompt tokens processed per prefill dispatch. */
  prefillChunk?: number;
  /** KV cache mode descriptor. */
  kvMode?: KvModeSpec;
  /** Element type of full-precision K/V. 'auto' = f16 when the adapter has shader-f16, else f32. */
  kvDtype?: 'auto' | 'f32' | 'f16';
  /** Keep logits of every position of a step readable (tests and perplexity evaluation). */
  allLogits?: boolean;
  /**
   * Context (tokens) to plan GPU memory for (default: the model's max_position_embeddings). A chosen context that
   * does not fit is refused (MemoryPlanError); the default one is shortened to what fits, with a notice.
   */
  contextTokens?: number;
  /** GPU memory the whole model may take: weights + activations + KV cache at the context (memory plan). */
  memoryBudgetBytes?: number;
  /** GPU memory the KV cache may take at the context (memory plan; a turn's kvBudget still applies). */
  kvBudgetBytes?: number;
  /**
   * Kernel schedules (tests and benchmarks): 'auto' (default) picks the barrier-free ones on CPU adapters and the
   * cooperative ones elsewhere; 'software' / 'hardware' force one, so a CPU adapter runs the GPU schedules too.
   */
  kernelSchedule?: 'auto' | 'software' | 'hardware';
  /** Lower GPU limits than the adapter's, enforced by the engine (tests simulate a small GPU with these). */
  deviceLimits?: { maxBufferSize?: number; maxStorageBufferBindingSize?: number; memoryBytes?: number };
}

/** Weight storage a user can choose at load. */
export type WeightChoice = 'auto' | 'f32' | 'f16' | 'q8' | 'q4';

/**
 * Which KV cache layout to use, with its parameters (defaults in src/kv/factory.ts). `rotate`: a per-head randomized
 * Hadamard rotation of q, k, v before the layout stores (and quantizes) them, undone on the attention output
 * (src/kv/rotated-cache.ts); the mode is then named `<mode>+rot`.
 */
export type KvModeSpec =
  | { mode: 'full'; rotate?: boolean }
  /** 8-bit codes, per-token groups of `groupSize` channels for K and V; `residual` newest tokens in full precision. */
  | { mode: 'int8'; groupSize?: number; residual?: number; rotate?: boolean }
  /** KIVI: keys per channel over `groupSize`-token blocks, values per token; `residual` (R) newest tokens in full precision. */
  | { mode: 'kivi'; bits?: 2 | 4; groupSize?: number; residual?: number; rotate?: boolean }
  /** MiniCache: layers from `startLayer` merged in pairs (SLERP weight `t`), top-`retention` distant tokens kept; base layers full. */
  | { mode: 'merge'; startLayer?: number; t?: number; retention?: number; residual?: number; rotate?: boolean }
  /** Merged pairs with KIVI-quantized directions and f16 norms; layers below `startLayer` use KIVI. */
  | { mode: 'merge+kivi'; bits?: 2 | 4; groupSize?: number; residual?: number; startLayer?: number; t?: number; retention?: number; rotate?: boolean }
  /**
   * ZipCache: per R-token block (`residual`, frozen once full) and KV head, the `salientFraction` of tokens with
   * the highest probe-normalized attention keep `highBits`, the rest `lowBits`; keys per channel in groups of
   * `groupSize` tokens within each subset, values channel-separable tokenwise.
   */
  | { mode: 'zip'; salientFraction?: number; highBits?: 4 | 8; lowBits?: 2 | 4; groupSize?: number; residual?: number; rotate?: boolean };

/** Every KV mode name. */
export type KvModeName = KvModeSpec['mode'];

/** Load progress, in bytes of weight files. */
export interface LoadProgress {
  /** `compile`: weights are on the GPU, kernels are being compiled and warmed up. */
  phase: 'config' | 'tokenizer' | 'weights' | 'compile' | 'ready';
  bytesDone: number;
  bytesTotal: number;
  file?: string;
  /** Of the bytes read so far, those fetched over the network (the rest came from the IndexedDB cache); absent when unknown. */
  downloadedBytes?: number;
}

/** What a successful load reports. */
export interface ModelInfo {
  label: string;
  architecture: string;
  numLayers: number;
  hiddenSize: number;
  vocabSize: number;
  maxPositions: number;
  /** Storage dtypes of the weight matrices, most bytes first, e.g. `f16` or `q4_k+q6_k+f32`. */
  weightDtype: string;
  /** Where the weights came from. */
  weightFormat: 'safetensors' | 'gguf';
  /** GPU bytes allocated for weights. */
  weightBytes: number;
  /** Why the weights were stored differently from what was asked (fitted to the weight memory limit). */
  weightNotice?: string;
  /** Set when the memory plan shortened the context to fit the GPU (maxPositions is then the shortened context). */
  contextNotice?: string;
  /** Set when browser storage was full (or refused writes): the model loaded without caching. */
  cacheNotice?: string;
  adapter: AdapterSummary;
  hasChatTemplate: boolean;
  /** The sampling a GenerateParams field left undefined gets (generation_config.json, else the engine's greedy). */
  generationDefaults: GenerationDefaults;
  /**
   * Ids that end generation: the tokenizer's eos_token ∪ config.json's eos_token_id ∪ generation_config.json's
   * eos_token_id (GGUF: tokenizer.ggml.eos/eot/eom_token_id).
   */
  eosTokenIds: number[];
}

/**
 * A model's default sampling, in GenerateParams terms (0 = greedy, topK 0 = off, topP 1 = off, penalty 1 = off).
 * `source`: read from the model's generation_config.json (transformers semantics: without do_sample it is
 * greedy; see src/model/generation-config.ts), or the engine's own defaults when the model has none.
 */
export interface GenerationDefaults {
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  /** The file's max_new_tokens; absent: the engine's 256. */
  maxNewTokens?: number;
  source: 'generation_config.json' | 'engine';
}

/** Adapter facts shown to the user and recorded in benchmarks. */
export interface AdapterSummary {
  description: string;
  f16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** One chat message. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Sampling and stopping parameters. Explicit values always win; a sampling field left undefined (maxNewTokens,
 * temperature, topK, topP, repetitionPenalty) takes the loaded model's ModelInfo.generationDefaults (its
 * generation_config.json), and what those leave out the engine's defaults: greedy, no penalty, 256 new tokens.
 */
export interface GenerateParams {
  maxNewTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  /** 0 = off. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
  /** 1 = off. */
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
  /** Stop at the model's EOS tokens (default true). */
  stopAtEos?: boolean;
  /** KV memory budget for this turn: escalate the mode and/or keep sinks + a recent window to stay inside it. */
  kvBudget?: KvBudget;
  /** Attach the engine's statistics to every TokenEvent (the live cache meter; cheaper than a second call per token). */
  streamStats?: boolean;
}

/** A memory budget for the KV cache (see src/engine/context-window.ts). */
export interface KvBudget {
  /** Bytes the KV cache may allocate. */
  bytes: number;
  /** Move to a stronger compression mode before dropping tokens from the cache. */
  autoEscalate: boolean;
  /** Attention-sink tokens always kept at the start of the cache (default 4). */
  sinkTokens?: number;
  /**
   * Which tokens go when the cache is full (default 'window'): 'window' keeps the sinks and the most recent
   * tokens; 'saliency' (H2O / SnapKV) keeps the tokens with the largest normalized attention saliency plus the
   * sinks and a recent window. Either way the system prompt and the chat template's role markers stay.
   */
  eviction?: EvictionPolicy;
}

/** Which tokens an eviction keeps (see KvBudget.eviction). */
export type EvictionPolicy = 'window' | 'saliency';

/** Something the engine did to the cache to stay inside the memory budget or the model's context. */
export type ContextEvent =
  /** The KV mode was switched to a stronger one (the chat continues in it). */
  | { kind: 'escalate'; fromMode: string; toMode: string; spec: KvModeSpec; neededTokens: number; limitTokens: number; budgetBytes: number }
  /** The budget allows the user's own mode again (a new chat, fewer tokens): the chat continues in it. */
  | { kind: 'step-down'; fromMode: string; toMode: string; spec: KvModeSpec; neededTokens: number; limitTokens: number; budgetBytes: number | null }
  /**
   * The cache dropped `droppedTokens` tokens to stay under its limit of `limitTokens`, keeping `keptTokens`:
   * `evictedRanges` are their positions [start, end) in the chat's token stream, `policy` chose them, and
   * `sinkTokens` sinks and `protectedKept` protected tokens (system prompt, role markers) stayed
   * (`protectedDropped` did not fit). `inPlace`: the kept slots were compacted on the GPU and keep their
   * positions, nothing was re-prefilled; otherwise the kept tokens were re-prefilled at positions 0 … keptTokens − 1
   * because the layout cannot evict in place (or not enough), or the next position would pass the model's context.
   */
  | {
      kind: 'window';
      at: 'prompt' | 'decode';
      reason: 'budget' | 'context';
      droppedTokens: number;
      sinkTokens: number;
      keptTokens: number;
      limitTokens: number;
      policy: EvictionPolicy;
      inPlace: boolean;
      reprefillBecause?: 'layout' | 'positions';
      protectedKept: number;
      protectedDropped: number;
      evictedRanges: Array<[number, number]>;
    };

/** Streamed once per generated token. */
export interface TokenEvent {
  tokenId: number;
  /** Text newly visible after this token (may be empty while a multi-byte character is incomplete). */
  text: string;
  index: number;
  /** Engine statistics after this token, when GenerateParams.streamStats is set. */
  stats?: EngineStats;
}

/** Why generation ended. */
export type FinishReason = 'eos' | 'stop' | 'length' | 'abort' | 'context';

/** Result of one generate call. */
export interface GenerateResult {
  text: string;
  tokenIds: number[];
  promptTokens: number;
  finishReason: FinishReason;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** What the engine did to stay inside the budget or the context (escalations, windows), in order. */
  contextEvents?: ContextEvent[];
}

/** Per-layer KV bytes, by component. */
export interface KvLayerStats {
  layer: number;
  /** For a layer of a merged pair, the other layer of the pair. */
  pairedWith?: number;
  components: Record<string, number>;
  total: number;
}

/** Engine statistics. */
export interface EngineStats {
  loaded: boolean;
  kvMode: string;
  tokensHeld: number;
  /** Bytes of every KV buffer actually allocated (sum of kvLayers[].total). */
  kvBytes: number;
  /** Bytes an fp16 cache holding the same tokens would take: 2 × L × Hk × d × tokens × 2. */
  kvFp16EquivalentBytes: number;
  /** kvFp16EquivalentBytes / kvBytes (0 when nothing is allocated). */
  kvCompressionRatio: number;
  /** kvBytes by component (codes, scales, residual, merged directions, norms, retained, …) over all layers. */
  kvComponents: Record<string, number>;
  kvLayers: KvLayerStats[];
  weightBytes: number;
  /** Activations, staging and model constants, plus the fused decode step's packed weight copy once it is built (small float models). */
  activationBytes: number;
  /** Prompt tokens dispatched in prefill steps since the model loaded (re-prefills after a slide included). */
  prefillTokensDispatched: number;
  /** Which tokens of the chat's token stream the cache holds (positions [start, end)), when a model is loaded. */
  kvPositions?: KvPositions;
  /** Bytes every live BufferGroup in the engine holds (weights, KV, activations, plans): 0 once all is freed. */
  trackedBytes: number;
}

/** How a recovery from an unexpected GPU device loss went (src/engine/device-recovery.ts). */
export type DeviceRecoveryEvent =
  | { kind: 'recovered'; message: string; tokensRestored: number; kvMode: string }
  | { kind: 'failed'; message: string };

/** The cache's view of the chat's token stream: position p is the p-th token fed since the cache was last empty. */
export interface KvPositions {
  /** RoPE position of the next token. */
  nextPosition: number;
  /** Positions the cache holds. */
  held: Array<[number, number]>;
  /** Protected positions (system prompt, role markers) of the stream, held or not. */
  protected: Array<[number, number]>;
  /** How many protected positions the cache holds. */
  protectedHeld: number;
}

/** The worker's API. Callbacks must be wrapped with comlink's `proxy()` by the caller. */
export interface EngineApi {
  load(source: ModelSourceSpec, options?: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  /** Cancel the running load (its `load` rejects with LoadCancelledError); nothing happens when none runs. */
  cancelLoad(): void;
  /** `onContext` hears each ContextEvent as it happens (they are also listed in the result). */
  generate(
    input: string | ChatMessage[],
    params?: GenerateParams,
    onToken?: (t: TokenEvent) => void,
    onContext?: (e: ContextEvent) => void,
  ): Promise<GenerateResult>;
  abort(): void;
  /** Switch the KV cache mode mid-chat; the cached tokens are re-prefilled in the new mode. */
  setKvMode(spec: KvModeSpec): Promise<EngineStats>;
  stats(): EngineStats;
  unload(): Promise<void>;
  /** Measure prefill and decode speed of the loaded model at each context length (benchmarks). */
  benchmark(contexts: number[], decodeTokens: number): Promise<SpeedRow[]>;
  /** Per-KV-mode decode speed and attention GPU time (benchmarks); the cache is left empty in the loaded mode. */
  benchmarkKvModes(request: KvModeBenchRequest): Promise<KvModeBenchResult>;
  /** Run one KV-compression quality measurement (`npm run eval`) on a fresh cache of the task's mode. */
  measureQuality(task: QualityTask): Promise<QualityResult>;
  /** Hear each recovery from an unexpected device loss (the model reloaded, the chat's cache restored). */
  watchDevice(listener: (e: DeviceRecoveryEvent) => void): void;
  /** Test hook: destroy the GPU device as an unexpected loss would (recovery follows). */
  debugLoseDevice(): void;
}

/**
 * One measurement of the quality harness (docs/kv-compression.md, "Measuring quality"). Each task builds a
 * fresh cache of `kvMode` (so its allocation is exactly what N tokens need) and drops the chat history.
 */
export type QualityTask =
  /** Perplexity: reads ids[0..N) (BOS first) in steps of the load's prefill chunk, each over the compressed past plus itself, and scores ids[1..N]. */
  | { kind: 'perplexity'; kvMode: KvModeSpec; ids: number[] }
  /** Greedy continuation: prefill `promptIds` in chunks, then `newTokens` single-token steps (EOS does not stop it). */
  | { kind: 'greedy'; kvMode: KvModeSpec; promptIds: number[]; newTokens: number }
  /** Teacher-forced top-1: reads `ids` in chunks and returns the argmax of the next-token logits after each prefix ids[0..i]. */
  | { kind: 'top1'; kvMode: KvModeSpec; ids: number[] }
  /**
   * Divergence from a reference mode (default full): reads ids[0..N) in chunks under the reference and under
   * `kvMode`, and scores each position i (the prediction of ids[i + 1]): NLL under both, KL(ref ‖ mode), top-1 agreement.
   */
  | {
      kind: 'divergence';
      kvMode: KvModeSpec;
      ids: number[];
      reference?: KvModeSpec;
      /** Read under a cache capped at `limitTokens` slots that evicts (in place where the layout can) before a chunk that would not fit. */
      evict?: { limitTokens: number; policy: EvictionPolicy; sinks?: number };
    }
  /** Allocated bytes of a cache of `kvMode` reserved to `tokens` positions, full-precision parts stored as `kvDtype` (not run). */
  | { kind: 'bytes'; kvMode: KvModeSpec; tokens: number; kvDtype: 'f32' | 'f16' };

/** Real allocated KV bytes (summed layerStats) next to the fp16 baseline 2 × L × Hk × d × tokens × 2. */
export interface QualityKvBytes {
  tokens: number;
  kvBytes: number;
  fp16Bytes: number;
  components: Record<string, number>;
}

/** What a QualityTask returns, by kind. */
export type QualityResult =
  | { kind: 'perplexity'; tokens: number; predicted: number; nll: number; ppl: number; ms: number; kv: QualityKvBytes }
  | { kind: 'greedy'; tokenIds: number[]; text: string; ms: number; kv: QualityKvBytes }
  /** top1[i]: argmax after ids[0..i]; margin[i]: its logit minus the runner-up's. */
  | { kind: 'top1'; top1: number[]; margin: number[]; ms: number; kv: QualityKvBytes }
  /** Per-position scores (src/engine/divergence.ts), positions 0 … N − 1; kv is the mode's cache after its run. */
  | { kind: 'divergence'; tokens: number; scores: PositionScores; ms: number; kv: QualityKvBytes; events?: ContextEvent[] }
  | { kind: 'bytes'; kv: QualityKvBytes };

/** The per-KV-mode speed benchmark's workload (src/engine/benchmark.ts). */
export interface KvModeBenchRequest {
  /** Modes to compare, by label; the first is the baseline (full). */
  modes: Array<{ label: string; spec: KvModeSpec }>;
  /** Context lengths; each mode's cache grows through them in order, prefilled once per repeat. */
  contexts: number[];
  /** S: decode tok/s is the mean over the S steps ending at each context; the S steps before them are profiled. */
  decodeTokens: number;
  /** Rounds over all modes (modes interleaved within each round). */
  repeats: number;
  /** How attention time is measured: timestamp-query when the adapter has it ('auto'), else CPU-side repeats. */
  timing?: 'auto' | 'cpu-repeat' | 'none';
}

/** One mode at one context in one round of the per-KV-mode benchmark. */
export interface KvModeSpeedSample {
  mode: string;
  round: number;
  context: number;
  decodeTokens: number;
  decodeMs: number;
  decodeTokensPerSecond: number;
  /** Tokens/s of the chunked prefill that brought the cache from the previous context to this one. */
  prefillTokensPerSecond: number;
  /**
   * Mean per decode step of the profiled steps. timestamps: GPU time of the attention kernels, of the
   * cache writes (append, quantize, merge) and of everything else. cpu-repeat: attentionMs is the wall-time
   * cost of one more copy of every attention dispatch; the other fields are NaN.
   */
  attentionMs: number;
  cacheWriteMs: number;
  otherGpuMs: number;
}

/** Result of benchmarkKvModes. */
export interface KvModeBenchResult {
  timing: 'timestamps' | 'cpu-repeat' | 'none';
  samples: KvModeSpeedSample[];
}

/** One measured context length of a speed benchmark. */
export interface SpeedRow extends Partial<DecodeProfile> {
  /** KV cache mode of the measurement. */
  kvMode?: string;
  context: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  prefillMs: number;
  decodeMs: number;
  decodeTokens: number;
  /** Bytes one decode step reads: every weight it multiplies by (one embedding row) and the KV cache's stored tokens. */
  bytesPerStep?: { weights: number; kv: number };
}

/** Where a decode step's time goes (`npm run bench`). */
export interface DecodeProfile {
  /** Compute dispatches of one decode step. */
  dispatchesPerStep: number;
  /** GPU milliseconds per step by kernel family (timestamp-query, one timed pass per dispatch); empty without the feature. */
  gpuMsByFamily: Record<string, number>;
  /** Their sum; NaN without timestamp-query. */
  gpuMsPerStep: number;
  /** Host milliseconds per plain step: encode (plan replay), submit, wait for the token, read it. */
  host: { encodeMs: number; submitMs: number; waitMs: number; readbackMs: number };
}
