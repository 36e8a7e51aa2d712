/**
 * Streams the tensors of a GGUF file to the GPU, after its header (src/model/gguf.ts) was read from the same
 * reader. Block-quantized tensors are uploaded as the file holds them (ggml blocks, read in place by the
 * kernels); F32/F16/BF16 tensors are converted to the model's float dtype like safetensors ones, or quantized
 * on load when asked. llama-architecture files store q/k rows in interleaved-pair RoPE order: their rows are
 * moved back to the Hugging Face (rotate-half) order here, whole rows at a time, so blocks stay intact.
 */
import { ModelFormatError, UnsupportedDtypeError } from '../errors';
import { BufferGroup } from '../gpu/buffers';
import { isBlockType, isQuant, llamaInputRounding, rowBytes, type GgmlTypeName } from '../gpu/block-types';
import type { GpuCaps } from '../gpu/device';
import type { WeightMatrix } from '../gpu/tensor';
import type { ByteStreamReader } from './byte-reader';
import type { ModelConfig } from './config';
import { ggufQkInterleaved, hfNameOfGgufTensor, qkRowsGgufToHf } from './gguf-config';
import type { GgufHeader, GgufTensorInfo } from './gguf';
import { isSensitiveMatrix, type OnLoadQuant } from './on-load-quant';
import type { SafetensorsDtype } from './safetensors';
import { layerTensorNames } from './tensor-names';
import { assembleWeights, expectedShapes, uploadFloatTensor, uploadMatrix, type ModelWeights, type WeightProgress } from './weights';

/** The ggml element types that convert like safetensors dtypes. */
const FLOAT_TYPES: Record<string, SafetensorsDtype> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** The q/k projections (HF names) whose rows a llama-architecture file stores interleaved. */
function interleavedNames(config: ModelConfig): Set<string> {
  const names = new Set<string>();
  if (!ggufQkInterleaved(config.architecture)) return names;
  for (let i = 0; i < config.numLayers; i++) {
    const n = layerTensorNames(i);
    names.add(n.wq);
    names.add(n.wk);
  }
  return names;
}

/** Options of {@link loadGgufWeights}. */
export interface GgufWeightOptions {
  /** Storage dtype of the file's float tensors. */
  floatDtype: 'f32' | 'f16';
  /** Quantize the file's float matrices on load (already-quantized tensors are kept as they are). */
  quant?: OnLoadQuant;
  /**
   * llama.cpp numerics: each matrix kept as the file holds it (blocks, or f16/bf16 elements) rounds the input of
   * its products as llama.cpp's CPU back end does for that type (WeightMatrix.inputRounding).
   */
  llamaNumerics?: boolean;
  onProgress?: WeightProgress;
  signal?: AbortSignal;
}

/**
 * Read every tensor the config needs from `reader` (positioned just after the header) and upload it.
 * `fileSize` is the file's size for progress. Tensors are read in file order; others are skipped.
 */
export async function loadGgufWeights(
  device: GPUDevice,
  caps: GpuCaps,
  reader: ByteStreamReader,
  header: GgufHeader,
  config: ModelConfig,
  file: string,
  options: GgufWeightOptions,
): Promise<ModelWeights> {
  const owner = new BufferGroup(device, 'weights');
  try {
    const shapes = expectedShapes(config);
    const interleaved = interleavedNames(config);
    const loaded = new Map<string, WeightMatrix>();
    const ordered = [...header.tensors].sort((a, b) => a.offset - b.offset);
    for (const info of ordered) {
      if (options.signal?.aborted) throw new DOMException('Load aborted', 'AbortError');
      const hf = hfNameOfGgufTensor(info.name);
      const want = hf ? shapes.get(hf) : undefined;
      if (!hf || !want) continue; // e.g. rope_freqs: computed from the config instead
      if (loaded.has(hf)) throw new ModelFormatError(`${file}: tensor ${info.name} appears twice. Re-download the file.`);
      checkGgufShape(info, want, file);
      const gap = header.dataStart + info.offset - reader.position;
      if (gap < 0) throw new ModelFormatError(`${file}: tensor ${info.name} overlaps the one before it. Re-download the file.`);
      await reader.skip(gap);
      const raw = await reader.read(info.byteSize);
      loaded.set(hf, uploadGgufTensor(owner, caps, hf, want, info, raw, interleaved.has(hf) ? config.headDim : 0, options, isSensitiveMatrix(hf, config)));
    }
    return assembleWeights(owner, config, loaded, shapes);
  } catch (err) {
    owner.destroy();
    throw err;
  } finally {
    await reader.cancel();
  }
}

function checkGgufShape(info: GgufTensorInfo, [rows, cols]: [number, number], file: string): void {
  // ggml order: ne[0] is the row length. Vectors are [n] (a trailing 1 is allowed).
  const ne = info.dims.length === 1 ? [info.dims[0], 1] : info.dims;
  const ok = ne.length >= 2 && ne[0] === cols && ne[1] === rows && ne.slice(2).every((d) => d === 1);
  if (!ok) {
    throw new ModelFormatError(
      `${file}: tensor ${info.name} has dims [${info.dims.join(', ')}] but the file's metadata implies [${cols}, ${rows}]. ` +
        'The file is damaged or of an unsupported layout: re-download it or pick another file.',
    );
  }
}

function uploadGgufTensor(
  owner: BufferGroup,
  caps: GpuCaps,
  name: string,
  shape: [number, number],
  info: GgufTensorInfo,
  raw: Uint8Array,
  /** Head size of a q/k weight stored interleaved (0: rows are in HF order). */
  interleavedHeadDim: number,
  options: GgufWeightOptions,
  /** Stored with more bits under the q4 mix (on-load-quant's isSensitiveMatrix). */
  sensitive: boolean,
): WeightMatrix {
  const [rows, cols] = shape;
  const floatType = info.typeName ? FLOAT_TYPES[info.typeName] : undefined;
  if (floatType) {
    const bytes = interleavedHeadDim ? qkRowsGgufToHf(raw, raw.byteLength / rows, interleavedHeadDim) : raw;
    const w = uploadFloatTensor(owner, caps, name, shape, floatType, bytes, options.floatDtype, options.quant && { choice: options.quant, sensitive });
    // A matrix quantized on load is no longer the file's: llama.cpp would not multiply it, so nothing to follow.
    return isQuant(w.dtype) ? w : withLlamaRounding(w, info.typeName as GgmlTypeName, options);
  }
  const type = info.typeName;
  if (!type || !isBlockType(type)) {
    throw new UnsupportedDtypeError(
      `${info.name} is stored as ${info.ggmlType.toUpperCase()}, which this engine does not read (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). ` +
        'Pick a file of another quantization, e.g. Q8_0 or Q4_K_M.',
    );
  }
  if (rows === 1) {
    throw new UnsupportedDtypeError(`${info.name} is a ${type}-quantized vector; norm weights and biases must be F32/F16. The file is not as llama.cpp writes it.`);
  }
  const bytes = interleavedHeadDim ? qkRowsGgufToHf(raw, rowBytes(type, cols), interleavedHeadDim) : raw;
  return withLlamaRounding(uploadMatrix(owner, caps, name, shape, bytes, type), type, options);
}

/** `w` with the input rounding llama.cpp applies for its file type, when asked for llama.cpp numerics (matrices only). */
function withLlamaRounding(w: WeightMatrix, fileType: GgmlTypeName, options: GgufWeightOptions): WeightMatrix {
  const inputRounding = options.llamaNumerics && w.rows > 1 ? llamaInputRounding(fileType) : undefined;
  return inputRounding ? { ...w, inputRounding } : w;
}
