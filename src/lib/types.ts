/**
 * The library's public request and response shapes. They follow OpenAI's chat-completions and completions
 * API (and WebLLM's names where it has one), plus kvtab's `kv` extension: the live KV cache bytes and ratio.
 * They are plain data, so they cross a `fetch` (as JSON / server-sent events) unchanged.
 */
import type { ContextEvent, EngineStats, FinishReason, KvBudget, KvModeSpec, LoadOptions, LoadProgress, ModelInfo } from '../worker/api';
import type { ModelSourceSpec } from '../model/source';

export type { ContextEvent, EngineStats, KvBudget, KvModeSpec, LoadOptions, LoadProgress, ModelInfo, ModelSourceSpec };

/** A chat message as OpenAI takes it: content as text, or as text parts. `developer` reads as `system`. */
export interface ChatCompletionMessageParam {
  role: 'system' | 'developer' | 'user' | 'assistant';
  content: string | Array<{ type: 'text'; text: string }>;
  name?: string;
}

/** Sampling and stopping fields shared by chat and plain completions. Unset fields take the model's generation_config.json defaults. */
export interface SamplingParams {
  /** The loaded model's id (optional here; the `openai` client always sends it). A different id is a ModelNotFoundError. */
  model?: string;
  /** New tokens at most (OpenAI's `max_tokens`; `max_completion_tokens` is read too). */
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  /** 0 = greedy. */
  temperature?: number | null;
  top_p?: number | null;
  /** kvtab / WebLLM extension: keep the k most likely tokens (0 = off). */
  top_k?: number | null;
  /** kvtab extension (transformers' name): divide logits of tokens already seen. */
  repetition_penalty?: number | null;
  seed?: number | null;
  /** Up to 4 stop strings (OpenAI's limit is not enforced); the reply ends before the first one. */
  stop?: string | string[] | null;
  stream?: boolean | null;
  /** `include_usage` is accepted; usage is always on the last chunk. kvtab: `include_kv_stats` puts full EngineStats in each chunk's `kv.stats`. */
  stream_options?: { include_usage?: boolean; include_kv_stats?: boolean } | null;
  /** Only 1 is supported. */
  n?: number | null;
  /** Aborts the request: the reply ends with finish_reason `abort` (WebLLM's value), the engine stays usable. */
  signal?: AbortSignal;
}

/** `chat.completions.create` request. */
export interface ChatCompletionCreateParams extends SamplingParams {
  messages: ChatCompletionMessageParam[];
}

/** `completions.create` request: a plain text continued as it is (no chat template). */
export interface CompletionCreateParams extends SamplingParams {
  prompt: string;
}

/** OpenAI's finish reasons, plus WebLLM's `abort` for an interrupted reply. */
export type ChatFinishReason = 'stop' | 'length' | 'abort';

/** The kv extension: what the KV cache holds after this chunk. */
export interface KvChunkInfo {
  /** Mode name, e.g. `kivi-2+rot`. */
  mode: string;
  /** Tokens the cache holds. */
  tokens: number;
  /** GPU bytes allocated for the cache. */
  bytes: number;
  /** Bytes an fp16 cache of the same tokens would take. */
  fp16_bytes: number;
  /** fp16_bytes / bytes. */
  ratio: number;
  /** Escalations and evictions since the previous chunk, as they happened. */
  events?: ContextEvent[];
  /** Full statistics, when stream_options.include_kv_stats is set (the app's meter uses them). */
  stats?: EngineStats;
}

/** Token counts, with WebLLM's `extra` speeds. */
export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  extra: {
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    time_to_first_token_s: number;
    e2e_latency_s: number;
    /** kvtab: the engine's own reason (`eos`, `stop`, `length`, `abort`, `context`). */
    finish: FinishReason;
    /** kvtab: the generated token ids. */
    token_ids: number[];
  };
}

/** One streamed chat chunk. */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{ index: 0; delta: { role?: 'assistant'; content?: string }; logprobs: null; finish_reason: ChatFinishReason | null }>;
  /** On the last chunk. */
  usage?: CompletionUsage;
  kv?: KvChunkInfo;
}

/** A whole chat reply (stream: false). */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{ index: 0; message: { role: 'assistant'; content: string; refusal: null }; logprobs: null; finish_reason: ChatFinishReason }>;
  usage: CompletionUsage;
  kv: KvChunkInfo;
}

/** One streamed plain-completion chunk, or the whole reply (stream: false). */
export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{ index: 0; text: string; logprobs: null; finish_reason: ChatFinishReason | null }>;
  usage?: CompletionUsage;
  kv?: KvChunkInfo;
}

/** `models.list()`: the loaded model (an engine holds one at a time). */
export interface ModelList {
  object: 'list';
  data: Array<{ id: string; object: 'model'; created: number; owned_by: string }>;
}

/** A model to load: a hub repo id (`org/name`, or `org/name/file.gguf` for one GGUF file), or a source spec. */
export type ModelRef = string | ModelSourceSpec;

/** Load choices: the engine's LoadOptions, plus where a repo id is fetched from. */
export interface EngineLoadOptions extends LoadOptions {
  /** Hub base URL for a repo id (default https://huggingface.co). */
  hubUrl?: string;
  /** Read through the IndexedDB weight cache (browser only; default true there): resumes and works offline. */
  cache?: boolean;
}

/** Load progress: the engine's byte counts plus WebLLM's InitProgressReport fields. */
export interface InitProgressReport extends LoadProgress {
  /** 0 … 1. */
  progress: number;
  /** Seconds since the load started. */
  timeElapsed: number;
  text: string;
}
