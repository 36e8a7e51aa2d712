/**
 * Parsing and validation of a Hugging Face `config.json` into the normalized shape the engine uses.
 * Pure: no DOM, no GPU.
 */
import { ModelFormatError, UnsupportedArchitectureError } from '../errors';
import { tokenIdList } from './generation-config';

/** Architectures whose forward pass this engine implements. */
export const SUPPORTED_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/** Llama-3 style frequency-dependent RoPE scaling (`rope_scaling.rope_type === 'llama3'`). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/** The normalized model configuration. All sizes are element counts. */
export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  tieEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2; llama with attention_bias). */
  qkvBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (qwen3). */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

type Json = Record<string, unknown>;

function num(raw: Json, key: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelFormatError(`config.json is missing "${key}". Check that the model folder holds a complete Hugging Face config.`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ModelFormatError(`config.json field "${key}" should be a number, got ${JSON.stringify(v)}.`);
  }
  return v;
}

function positiveInt(raw: Json, key: string, fallback?: number): number {
  const v = num(raw, key, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new ModelFormatError(`config.json field "${key}" must be a positive integer, got ${v}.`);
  return v;
}

function parseRopeScaling(raw: Json): Llama3RopeScaling | null {
  const rs = raw['rope_scaling'] as Json | null | undefined;
  if (!rs) return null;
  const type = (rs['rope_type'] ?? rs['type']) as string | undefined;
  if (type === 'default' || type === undefined) return null;
  if (type !== 'llama3') {
    throw new UnsupportedArchitectureError(
      `rope_scaling type "${type}" is not supported (supported: llama3). Pick a model without this RoPE variant.`,
    );
  }
  return {
    type: 'llama3',
    factor: num(rs, 'factor'),
    lowFreqFactor: num(rs, 'low_freq_factor'),
    highFreqFactor: num(rs, 'high_freq_factor'),
    originalMaxPositions: positiveInt(rs, 'original_max_position_embeddings'),
  };
}

/** Parse and validate `config.json`. Throws a named error before any weights are downloaded. */
export function parseModelConfig(raw: unknown): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ModelFormatError('config.json is not a JSON object.');
  }
  const cfg = raw as Json;
  const modelType = cfg['model_type'];
  if (typeof modelType !== 'string') {
    throw new ModelFormatError('config.json has no "model_type"; it does not look like a Hugging Face transformers config.');
  }
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(modelType)) {
    throw new UnsupportedArchitectureError(
      `Model type "${modelType}" is not supported. Supported: ${SUPPORTED_ARCHITECTURES.join(', ')} (SmolLM2 and TinyLlama are llama).`,
    );
  }
  const architecture = modelType as Architecture;
  const act = cfg['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw new UnsupportedArchitectureError(`hidden_act "${String(act)}" is not supported (only silu / SwiGLU).`);

  const hiddenSize = positiveInt(cfg, 'hidden_size');
  const numHeads = positiveInt(cfg, 'num_attention_heads');
  const numKvHeads = positiveInt(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelFormatError(`num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads}).`);
  }
  if ((cfg['head_dim'] ?? null) === null && hiddenSize % numHeads !== 0) {
    throw new ModelFormatError(
      `config.json has no "head_dim" and hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}). ` +
        'The config is inconsistent; re-download it or check the model id.',
    );
  }
  const headDim = positiveInt(cfg, 'head_dim', hiddenSize / numHeads);
  const eosTokenIds = tokenIdList(cfg['eos_token_id'], 'config.json', 'eos_token_id');
  const bos = cfg['bos_token_id'];

  return {
    architecture,
    hiddenSize,
    intermediateSize: positiveInt(cfg, 'intermediate_size'),
    numLayers: positiveInt(cfg, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(cfg, 'vocab_size'),
    maxPositions: positiveInt(cfg, 'max_position_embeddings', 2048),
    rmsEps: num(cfg, 'rms_norm_eps', 1e-6),
    ropeTheta: num(cfg, 'rope_theta', 10000),
    ropeScaling: parseRopeScaling(cfg),
    tieEmbeddings: Boolean(cfg['tie_word_embeddings'] ?? false),
    qkvBias: architecture === 'qwen2' ? true : Boolean(cfg['attention_bias'] ?? false),
    qkNorm: architecture === 'qwen3',
    bosTokenId: typeof bos === 'number' ? bos : null,
    eosTokenIds,
  };
}
