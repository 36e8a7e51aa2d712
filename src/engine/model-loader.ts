/**
 * Reads a model's config, tokenizer and weights from a source, in that order, so a bad config or tokenizer
 * fails before weights move: from a Hugging Face folder (config.json, optional generation_config.json,
 * tokenizer.json, *.safetensors), or from
 * one GGUF file, whose header carries the config and the tokenizer and whose tensors follow in the same stream.
 */
import { ModelFormatError } from '../errors';
import type { GpuContext } from '../gpu/device';
import { ByteStreamReader } from '../model/byte-reader';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { ENGINE_GENERATION_DEFAULTS, readGenerationConfig } from '../model/generation-config';
import { readGgufHeader, type GgufHeader } from '../model/gguf';
import { configFromGguf, GGUF_ROPE_FREQS, hfNameOfGgufTensor } from '../model/gguf-config';
import { tokenizerFilesFromGguf } from '../model/gguf-tokenizer';
import { loadGgufWeights } from '../model/gguf-weights';
import { isBlockType } from '../gpu/block-types';
import { isSensitiveMatrix } from '../model/on-load-quant';
import { plannedBytes, planWeights, type PlannedTensor, type WeightPlan } from '../model/weight-plan';
import { withGpuErrors } from '../gpu/error-scopes';
import { planLoad } from './memory-plan';
import type { ModelSource } from '../model/source';
import { loadTokenizer, tokenizerFromJson, type ChatTokenizer } from '../model/tokenizer';
import { expectedShapes, loadWeights, type ModelWeights } from '../model/weights';
import type { GenerationDefaults, LoadOptions, LoadProgress } from '../worker/api';

/** What a load produced. */
export interface ModelParts {
  config: ModelConfig;
  tokenizer: ChatTokenizer;
  weights: ModelWeights;
  format: 'safetensors' | 'gguf';
  /** Sampling defaults: the folder's generation_config.json, else the engine's (GGUF files carry none here). */
  generationDefaults: GenerationDefaults;
  /** Element type of float weights (norms, biases, unquantized matrices); the shaders' `wt`. */
  floatDtype: 'f32' | 'f16';
  /** Set when the storage was chosen to fit the weight memory limit (shown to the user). */
  notice?: string;
  /** Set when the memory plan shortened the context (config.maxPositions is then the shortened context). */
  contextNotice?: string;
}

/** Largest head size the attention kernels take. */
const MAX_HEAD_DIM = 256;

function checkConfig(config: ModelConfig): ModelConfig {
  if (config.headDim > MAX_HEAD_DIM) throw new ModelFormatError(`head_dim ${config.headDim} is above the supported ${MAX_HEAD_DIM}.`);
  return config;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`${file} is not valid JSON (${(err as Error).message}). Re-download the model.`);
  }
}

/** Float storage dtype and on-load quantization from the options, the adapter and the weight memory limit. */
function weightChoice(options: LoadOptions, gpu: GpuContext, tensors: PlannedTensor[]): WeightPlan {
  const floatDtype = options.weightDtype === 'f32' || !gpu.caps.f16 ? 'f32' : 'f16';
  return planWeights(tensors, options.weightDtype, floatDtype, options.weightBudgetBytes);
}

/**
 * The memory plan (engine/memory-plan.ts) for these weights: refuses a load that does not fit before any weight
 * moves, or returns the config with its context shortened to what fits.
 */
function planFit(config: ModelConfig, options: LoadOptions, gpu: GpuContext, tensors: PlannedTensor[], plan: WeightPlan): { config: ModelConfig; contextNotice?: string } {
  const alternatives = (['q8', 'q4'] as const).map((dtype) => ({ dtype, bytes: plannedBytes(tensors, plan.floatDtype, dtype) }));
  const memory = planLoad({ config, options, caps: gpu.caps, weights: { bytes: plan.bytes, dtype: plan.quant ?? plan.floatDtype, alternatives } });
  return { config: { ...config, maxPositions: memory.contextTokens }, contextNotice: memory.notice };
}

/**
 * Load config, tokenizer and weights. `file` names the GGUF file to read (else the folder is read in Hugging
 * Face layout); `device` opens the GPU once config and tokenizer passed.
 */
export async function loadModelParts(
  source: ModelSource,
  file: string | undefined,
  options: LoadOptions,
  device: () => Promise<GpuContext>,
  onProgress?: (p: LoadProgress) => void,
  signal?: AbortSignal,
): Promise<ModelParts> {
  if (file) return loadGguf(source, file, options, device, onProgress, signal);
  onProgress?.({ phase: 'config', bytesDone: 0, bytesTotal: 0 });
  const parsed = checkConfig(parseModelConfig(parseJson(await source.text('config.json'), 'config.json')));
  const generation = await readGenerationConfig(source);
  // The EOS set: config.json's and generation_config.json's eos_token_id (the tokenizer adds its eos_token).
  const config: ModelConfig = {
    ...parsed,
    bosTokenId: parsed.bosTokenId ?? generation?.bosTokenId ?? null,
    eosTokenIds: [...new Set([...parsed.eosTokenIds, ...(generation?.eosTokenIds ?? [])])],
  };
  onProgress?.({ phase: 'tokenizer', bytesDone: 0, bytesTotal: 0 });
  const tokenizer = await loadTokenizer(source, config.eosTokenIds);
  const gpu = await device();
  const tensors = [...expectedShapes(config)].map(([name, [rows, cols]]) => ({ rows, cols, stored: 'float' as const, sensitive: isSensitiveMatrix(name, config) }));
  const plan = weightChoice(options, gpu, tensors);
  const { floatDtype, quant, notice } = plan;
  const fit = planFit(config, options, gpu, tensors, plan);
  const weights = await withGpuErrors(
    gpu.device,
    'the weights',
    () =>
      loadWeights(
        gpu.device,
        gpu.caps,
        source,
        config,
        floatDtype,
        (done, total, f) => onProgress?.({ phase: 'weights', bytesDone: done, bytesTotal: total, file: f, downloadedBytes: source.bytesDownloaded }),
        signal,
        quant,
      ),
    (w) => w?.destroy(),
  );
  return { ...fit, tokenizer, weights, format: 'safetensors', generationDefaults: generation?.defaults ?? ENGINE_GENERATION_DEFAULTS, floatDtype, notice };
}

/**
 * Llama 3.1/3.2 files carry their RoPE scaling as a `rope_freqs.weight` tensor, which the config needs before
 * any weight is uploaded. llama.cpp writes it first in the data section, so it is read here and the stream
 * goes on from there; one further along would need a second pass over the file.
 */
async function readRopeFreqs(reader: ByteStreamReader, header: GgufHeader, file: string): Promise<Float32Array | undefined> {
  const info = header.tensors.find((t) => t.name === GGUF_ROPE_FREQS);
  if (!info) return undefined;
  if (info.typeName !== 'f32') throw new ModelFormatError(`${file}: ${GGUF_ROPE_FREQS} is ${info.ggmlType}, expected f32. The file is not as llama.cpp writes it.`);
  if (header.tensors.some((t) => t.offset < info.offset)) {
    throw new ModelFormatError(`${file}: ${GGUF_ROPE_FREQS} is not the first tensor of the file, so its RoPE scaling cannot be read while streaming. Convert the file again with llama.cpp.`);
  }
  await reader.skip(header.dataStart + info.offset - reader.position);
  const bytes = await reader.read(info.byteSize);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** The tensors of a GGUF file the config needs, as stored (float types are converted on load, blocks kept). */
function ggufPlannedTensors(header: GgufHeader, config: ModelConfig): PlannedTensor[] {
  const shapes = expectedShapes(config);
  return header.tensors.flatMap((t) => {
    const name = hfNameOfGgufTensor(t.name) ?? '';
    const shape = shapes.get(name);
    if (!shape) return [];
    // bf16 is a float type here (converted on load), not a block type.
    return [{ rows: shape[0], cols: shape[1], stored: t.typeName && isBlockType(t.typeName) ? t.typeName : 'float', sensitive: isSensitiveMatrix(name, config) }];
  });
}

async function loadGguf(
  source: ModelSource,
  file: string,
  options: LoadOptions,
  device: () => Promise<GpuContext>,
  onProgress?: (p: LoadProgress) => void,
  signal?: AbortSignal,
): Promise<ModelParts> {
  onProgress?.({ phase: 'config', bytesDone: 0, bytesTotal: 0 });
  const { size, body } = await source.stream(file);
  const total = Number.isFinite(size) ? size : 0;
  let done = 0;
  // Every byte of the file is download progress, header included (config and tokenizer come first in it).
  const bytes = () => onProgress?.({ phase: 'weights', bytesDone: done, bytesTotal: Math.max(total, done), file, downloadedBytes: source.bytesDownloaded });
  const reader = new ByteStreamReader(body, file, (n) => {
    done += n;
    bytes();
  });
  try {
    const header = await readGgufHeader(reader, Number.isFinite(size) ? size : null, file);
    const ropeFreqs = await readRopeFreqs(reader, header, file);
    const config = checkConfig(configFromGguf(header.metadata, header.tensors.map((t) => t.name), { ropeFreqs }));
    onProgress?.({ phase: 'tokenizer', bytesDone: done, bytesTotal: total });
    const files = tokenizerFilesFromGguf(header.metadata);
    const tokenizer = await tokenizerFromJson(files.tokenizerJson, files.tokenizerConfig, config.eosTokenIds, file);
    const gpu = await device();
    const tensors = ggufPlannedTensors(header, config);
    const plan = weightChoice(options, gpu, tensors);
    const { floatDtype, quant, notice } = plan;
    const fit = planFit(config, options, gpu, tensors, plan);
    const weights = await withGpuErrors(gpu.device, 'the weights', () => loadGgufWeights(gpu.device, gpu.caps, reader, header, config, file, { floatDtype, quant, signal, llamaNumerics: options.ggufNumerics !== 'f32' }), (w) => w?.destroy());
    bytes();
    return { ...fit, tokenizer, weights, format: 'gguf', generationDefaults: ENGINE_GENERATION_DEFAULTS, floatDtype, notice };
  } finally {
    await reader.cancel();
  }
}
