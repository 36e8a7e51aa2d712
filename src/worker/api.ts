/**
 * The typed API the engine worker exposes through comlink. The main thread only ever sees these types.
 */
import type { ModelSourceSpec } from '../model/source';

/** Load-time choices. */
export interface LoadOptions {
  /** Storage dtype of weights on the GPU. 'auto' = f16 when the adapter has shader-f16, else f32. */
  weightDtype?: 'auto' | 'f32' | 'f16';
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
}

/** Which KV cache layout to use, with its parameters (defaults in src/kv/factory.ts). */
export type KvModeSpec =
  | { mode: 'full' }
  /** 8-bit codes, per-token groups of `groupSize` channels for K and V; `residual` newest tokens in full precision. */
  | { mode: 'int8'; groupSize?: number; residual?: number }
  /** KIVI: keys per channel over `groupSize`-token blocks, values per token; `residual` (R) newest tokens in full precision. */
  | { mode: 'kivi'; bits?: 2 | 4; groupSize?: number; residual?: number }
  /** MiniCache: layers from `startLayer` merged in pairs (SLERP weight `t`), top-`retention` distant tokens kept; base layers full. */
  | { mode: 'merge'; startLayer?: number; t?: number; retention?: number; residual?: number }
  /** Merged pairs with KIVI-quantized directions and f16 norms; layers below `startLayer` use KIVI. */
  | { mode: 'merge+kivi'; bits?: 2 | 4; groupSize?: number; residual?: number; startLayer?: number; t?: number; retention?: number };

/** Every KV mode name. */
export type KvModeName = KvModeSpec['mode'];

/** Load progress, in bytes of weight files. */
export interface LoadProgress {
  phase: 'config' | 'tokenizer' | 'weights' | 'ready';
  bytesDone: number;
  bytesTotal: number;
  file?: string;
}

/** What a successful load reports. */
export interface ModelInfo {
  label: string;
  architecture: string;
  numLayers: number;
  hiddenSize: number;
  vocabSize: number;
  maxPositions: number;
  weightDtype: 'f32' | 'f16';
  weightBytes: number;
  adapter: AdapterSummary;
  hasChatTemplate: boolean;
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

/** Sampling and stopping parameters. Defaults: greedy, no penalty, 256 new tokens. */
export interface GenerateParams {
  maxNewTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
  /** Stop at the model's EOS tokens (default true). */
  stopAtEos?: boolean;
}

/** Streamed once per generated token. */
export interface TokenEvent {
  tokenId: number;
  /** Text newly visible after this token (may be empty while a multi-byte character is incomplete). */
  text: string;
  index: number;
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
  kvBytes: number;
  kvFp16EquivalentBytes: number;
  kvLayers: KvLayerStats[];
  weightBytes: number;
  activationBytes: number;
}

/** The worker's API. Callbacks must be wrapped with comlink's `proxy()` by the caller. */
export interface EngineApi {
  load(source: ModelSourceSpec, options?: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  generate(input: string | ChatMessage[], params?: GenerateParams, onToken?: (t: TokenEvent) => void): Promise<GenerateResult>;
  abort(): void;
  /** Switch the KV cache mode mid-chat; the cached tokens are re-prefilled in the new mode. */
  setKvMode(spec: KvModeSpec): Promise<EngineStats>;
  stats(): EngineStats;
  unload(): Promise<void>;
  /** Measure prefill and decode speed of the loaded model at each context length (benchmarks). */
  benchmark(contexts: number[], decodeTokens: number): Promise<SpeedRow[]>;
}

/** One measured context length of a speed benchmark. */
export interface SpeedRow {
  context: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  prefillMs: number;
  decodeMs: number;
  decodeTokens: number;
}
