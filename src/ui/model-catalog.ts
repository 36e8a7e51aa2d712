/**
 * The curated model list: hub ids with their real config numbers, and what each costs: download size,
 * weight memory on the GPU, and KV cache memory at 4K context in every mode (from src/kv/estimate.ts,
 * the same formulas the caches allocate by). Pure apart from the optional size probe.
 */
import { estimateKvBytes } from '../kv/estimate';
import type { KvShape } from '../kv/types';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { expectedShapes } from '../model/weights';
import type { KvModeSpec } from '../worker/api';

/** One curated model. `config` holds the fields of the repo's config.json the estimates need. */
export interface CatalogEntry {
  repo: string;
  name: string;
  /** Needs accepting a license on the hub and an access token. */
  gated: boolean;
  blurb: string;
  config: Record<string, unknown>;
}

/** Context length the memory estimates are given for. */
export const ESTIMATE_TOKENS = 4096;

/** The modes the catalog estimates, with their default parameters, in the order shown. */
export const CATALOG_KV_MODES: Array<{ label: string; spec: KvModeSpec }> = [
  { label: 'full', spec: { mode: 'full' } },
  { label: 'int8', spec: { mode: 'int8' } },
  { label: 'kivi 4-bit', spec: { mode: 'kivi', bits: 4 } },
  { label: 'kivi 2-bit', spec: { mode: 'kivi', bits: 2 } },
  { label: 'merge', spec: { mode: 'merge' } },
  { label: 'zip', spec: { mode: 'zip' } },
  { label: 'merge+kivi', spec: { mode: 'merge+kivi' } },
];

const llama = { model_type: 'llama', hidden_act: 'silu' };
const qwen2 = { model_type: 'qwen2', hidden_act: 'silu' };

/** The curated list (config numbers as published in each repo's config.json). */
export const MODEL_CATALOG: CatalogEntry[] = [
  {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    name: 'SmolLM2 135M Instruct',
    gated: false,
    blurb: 'Smallest real chat model here; quick to download, runs on almost any GPU.',
    config: { ...llama, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000, tie_word_embeddings: true },
  },
  {
    repo: 'HuggingFaceTB/SmolLM2-360M-Instruct',
    name: 'SmolLM2 360M Instruct',
    gated: false,
    blurb: 'Noticeably better answers than 135M at under 1 GB.',
    config: { ...llama, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5, vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000, tie_word_embeddings: true },
  },
  {
    repo: 'Qwen/Qwen2.5-0.5B-Instruct',
    name: 'Qwen2.5 0.5B Instruct',
    gated: false,
    blurb: 'Multilingual; only 2 KV heads, so its KV cache is small for its size.',
    config: { ...qwen2, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rope_theta: 1000000, rms_norm_eps: 1e-6, tie_word_embeddings: true },
  },
  {
    repo: 'Qwen/Qwen3-0.6B',
    name: 'Qwen3 0.6B',
    gated: false,
    blurb: 'Newest small Qwen, with thinking mode; 8 KV heads of 128, so a large KV cache.',
    config: { model_type: 'qwen3', hidden_act: 'silu', hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, vocab_size: 151936, max_position_embeddings: 40960, rope_theta: 1000000, rms_norm_eps: 1e-6, tie_word_embeddings: true },
  },
  {
    repo: 'meta-llama/Llama-3.2-1B-Instruct',
    name: 'Llama 3.2 1B Instruct',
    gated: true,
    blurb: 'Gated: accept Meta’s license on huggingface.co and paste an access token below.',
    config: {
      ...llama, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, max_position_embeddings: 131072, rope_theta: 500000, tie_word_embeddings: true,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    },
  },
  {
    repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    name: 'TinyLlama 1.1B Chat',
    gated: false,
    blurb: 'Largest here; 2K context, so its KV figures are for 2,048 tokens.',
    config: { ...llama, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000, max_position_embeddings: 2048, rope_theta: 10000, tie_word_embeddings: false },
  },
];

/** What a model costs. */
export interface ModelEstimate {
  config: ModelConfig;
  /** Parameters the engine loads (tied embeddings counted once). */
  params: number;
  /** Weight memory on the GPU with f16 weights (f32 on adapters without shader-f16: twice this). */
  weightBytesF16: number;
  /** Download size of bf16 safetensors holding those parameters (the real file may add an untied copy of tied embeddings). */
  downloadBytesEstimate: number;
  /** Tokens the KV figures are for: 4,096, or the model's context when shorter. */
  kvTokens: number;
  /** KV bytes at kvTokens per mode (f16 full-precision parts), in CATALOG_KV_MODES order. */
  kv: Array<{ label: string; bytes: number }>;
}

/** The KV shape of a config, as the engine builds it (prefill steps of 128 tokens). */
export function kvShapeOf(config: ModelConfig): KvShape {
  return { numLayers: config.numLayers, numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim, maxTokens: config.maxPositions, maxStepTokens: Math.min(128, config.maxPositions) };
}

/** Estimates for a parsed config. */
export function estimateModel(config: ModelConfig): ModelEstimate {
  let params = 0;
  let weightBytesF16 = 0;
  for (const [rows, cols] of expectedShapes(config).values()) {
    params += rows * cols;
    weightBytesF16 += Math.max(4, Math.ceil((rows * cols * 2) / 4) * 4);
  }
  const kvTokens = Math.min(ESTIMATE_TOKENS, config.maxPositions);
  const shape = kvShapeOf(config);
  return {
    config,
    params,
    weightBytesF16,
    downloadBytesEstimate: params * 2,
    kvTokens,
    kv: CATALOG_KV_MODES.map(({ label, spec }) => ({ label, bytes: estimateKvBytes(shape, spec, kvTokens, 2) })),
  };
}

/** Estimates for a catalog entry (its config is validated like a downloaded one). */
export function estimateEntry(entry: CatalogEntry): ModelEstimate {
  return estimateModel(parseModelConfig(entry.config));
}

/**
 * The real download size of a repo's weights from the hub: the index's total_size, or the Content-Length of
 * model.safetensors. Null when the hub does not answer (offline, gated without a token, not on this hub).
 */
export async function probeDownloadBytes(baseUrl: string, repo: string, fetchImpl: typeof fetch = (...a) => fetch(...a)): Promise<number | null> {
  const root = `${baseUrl.replace(/\/+$/, '')}/${repo}/resolve/main/`;
  try {
    const head = await fetchImpl(root + 'model.safetensors', { method: 'HEAD' });
    const length = Number(head.headers.get('content-length'));
    if (head.ok && Number.isSafeInteger(length) && length > 0) return length;
    if (head.status !== 404) return null;
    const index = await fetchImpl(root + 'model.safetensors.index.json');
    if (!index.ok) return null;
    const total = ((await index.json()) as { metadata?: { total_size?: unknown } }).metadata?.total_size;
    return typeof total === 'number' && total > 0 ? total : null;
  } catch {
    return null;
  }
}
