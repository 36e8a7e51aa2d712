/**
 * Synthesize small random-weight Hugging Face model folders (config.json, safetensors, tokenizer files)
 * for each supported architecture, so tests can exercise biases, q/k norms, odd head dims, GQA ratios,
 * dtypes and sharding without real checkpoints.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSafetensors, DTYPE_BYTES, type SafetensorsDtype, type TensorToWrite } from '../../src/model/safetensors';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, layerTensorNames } from '../../src/model/tensor-names';
import { mulberry32 } from '../../src/reference/mulberry32';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The tokenizer files copied into every random model (ids are raw in tests, so any tokenizer will do). */
export const TOKENIZER_SOURCE = path.join(
  path.resolve(process.env.KVTAB_MODELS_DIR ?? path.join(here, '..', '..', '..', 'shared', 'models')),
  'stories260k',
);

/** What to generate. Sizes are element counts, as in config.json. */
export interface RandomModelOptions {
  architecture: 'llama' | 'qwen2' | 'qwen3' | 'mistral';
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Written as `head_dim` when given; otherwise hidden / heads. */
  headDim?: number;
  intermediateSize: number;
  vocabSize: number;
  tieEmbeddings?: boolean;
  dtype?: SafetensorsDtype;
  seed?: number;
  /** Written verbatim as `rope_scaling`, e.g. `{ rope_type: 'llama3', factor: 8, ... }`. */
  ropeScaling?: object;
  ropeTheta?: number;
  maxPositions?: number;
  /** Write model.safetensors.index.json and two shards instead of model.safetensors. */
  sharded?: boolean;
}

/** Presets covering the architecture features most likely to hide bugs. */
export const randomConfigs = {
  /** qwen2: q/k/v biases, GQA 2. */
  qwen2Bias: {
    architecture: 'qwen2', hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128, vocabSize: 256,
    tieEmbeddings: true, seed: 2,
  },
  /** qwen3: per-head q/k RMSNorm and head_dim 32, twice hidden / heads. */
  qwen3QkNorm: {
    architecture: 'qwen3', hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, intermediateSize: 128,
    vocabSize: 256, tieEmbeddings: true, seed: 3,
  },
  /** llama with GQA ratio 3 (6 query heads over 2 KV heads), untied lm_head. */
  llamaGqa3: {
    architecture: 'llama', hiddenSize: 48, numLayers: 2, numHeads: 6, numKvHeads: 2, intermediateSize: 96, vocabSize: 256,
    seed: 4,
  },
  /** mistral: plain multi-head attention, untied. */
  mistral: {
    architecture: 'mistral', hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 64, vocabSize: 128,
    seed: 5,
  },
} satisfies Record<string, RandomModelOptions>;


/** Normal samples via Box-Muller. */
function normals(rand: () => number, n: number, mean: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const th = 2 * Math.PI * rand();
    out[i] = mean + std * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(th);
  }
  return out;
}

/** The HF config.json for these options. */
export function randomModelConfigJson(o: RandomModelOptions): Record<string, unknown> {
  const className = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' };
  const cfg: Record<string, unknown> = {
    architectures: [className[o.architecture]],
    model_type: o.architecture,
    hidden_size: o.hiddenSize,
    intermediate_size: o.intermediateSize,
    num_hidden_layers: o.numLayers,
    num_attention_heads: o.numHeads,
    num_key_value_heads: o.numKvHeads,
    max_position_embeddings: o.maxPositions ?? 512,
    rms_norm_eps: o.architecture.startsWith('qwen') ? 1e-6 : 1e-5,
    rope_theta: o.ropeTheta ?? 10000,
    vocab_size: o.vocabSize,
    tie_word_embeddings: o.tieEmbeddings ?? false,
    hidden_act: 'silu',
    bos_token_id: 1,
    eos_token_id: 2,
    attention_bias: o.architecture === 'qwen2',
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[o.dtype ?? 'F32'],
  };
  if (o.headDim !== undefined) cfg['head_dim'] = o.headDim;
  if (o.ropeScaling !== undefined) cfg['rope_scaling'] = o.ropeScaling;
  return cfg;
}

/**
 * Random tensors for these options, in HF names and shapes. Linear weights ~ N(0, 1/K) so activations stay
 * O(1); norm weights ~ 1 + N(0, 0.1); biases ~ N(0, 0.2), non-zero so a dropped bias changes the output.
 */
export function randomModelTensors(o: RandomModelOptions): TensorToWrite[] {
  const rand = mulberry32(o.seed ?? 1);
  const dtype = o.dtype ?? 'F32';
  const D = o.hiddenSize;
  const d = o.headDim ?? D / o.numHeads;
  const qDim = o.numHeads * d;
  const kvDim = o.numKvHeads * d;
  const F = o.intermediateSize;
  const out: TensorToWrite[] = [];
  const tensor = (name: string, shape: number[], mean: number, std: number) =>
    out.push({ name, dtype, shape, data: normals(rand, shape.reduce((a, b) => a * b, 1), mean, std) });
  const linear = (name: string, N: number, K: number) => tensor(name, [N, K], 0, 1 / Math.sqrt(K));
  const norm = (name: string, n: number) => tensor(name, [n], 1, 0.1);
  tensor(EMBED_TOKENS, [o.vocabSize, D], 0, 1 / Math.sqrt(D));
  for (let i = 0; i < o.numLayers; i++) {
    const n = layerTensorNames(i);
    norm(n.attnNorm, D);
    linear(n.wq, qDim, D);
    linear(n.wk, kvDim, D);
    linear(n.wv, kvDim, D);
    if (o.architecture === 'qwen2') {
      tensor(n.bq, [qDim], 0, 0.2);
      tensor(n.bk, [kvDim], 0, 0.2);
      tensor(n.bv, [kvDim], 0, 0.2);
    }
    if (o.architecture === 'qwen3') {
      norm(n.qNorm, d);
      norm(n.kNorm, d);
    }
    linear(n.wo, D, qDim);
    norm(n.ffnNorm, D);
    linear(n.wGate, F, D);
    linear(n.wUp, F, D);
    linear(n.wDown, D, F);
  }
  norm(FINAL_NORM, D);
  if (!o.tieEmbeddings) linear(LM_HEAD, o.vocabSize, D);
  return out;
}

/** Write a complete random model folder at `dir` (created if missing). */
export async function writeRandomModel(dir: string, opts: RandomModelOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(randomModelConfigJson(opts), null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(TOKENIZER_SOURCE, f), path.join(dir, f));
  const tensors = randomModelTensors(opts);
  const metadata = { format: 'pt' };
  if (!opts.sharded) {
    await writeFile(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, metadata));
    return;
  }
  const cut = Math.ceil(tensors.length / 2);
  const shards = [tensors.slice(0, cut), tensors.slice(cut)];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < shards.length; s++) {
    const file = `model-0000${s + 1}-of-0000${shards.length}.safetensors`;
    for (const t of shards[s]) {
      weightMap[t.name] = file;
      totalSize += t.data.length * DTYPE_BYTES[t.dtype];
    }
    await writeFile(path.join(dir, file), encodeSafetensors(shards[s], metadata));
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
}
