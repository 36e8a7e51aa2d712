/**
 * Streams safetensors files (single or sharded) from a ModelSource to the GPU, converting each tensor to
 * the storage dtype and splitting matrices larger than one storage binding. Owns the weight buffers.
 */
import { ModelFormatError } from '../errors';
import { BufferGroup } from '../gpu/buffers';
import type { GpuCaps } from '../gpu/device';
import { isQuant, rowBytes, type WeightDtype } from '../gpu/block-types';
import { splitRows, type WeightMatrix } from '../gpu/tensor';
import type { ModelSource } from './source';
import { ByteStreamReader } from './byte-reader';
import type { ModelConfig } from './config';
import { isSensitiveMatrix, quantizeOnLoad, type OnLoadQuant } from './on-load-quant';
import { convertTensor, parseSafetensorsHeader, readHeaderLength, type SafetensorsDtype, type TensorInfo } from './safetensors';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, layerTensorNames } from './tensor-names';

/** One decoder layer's weights. Optional entries exist only when the architecture has them. */
export interface LayerWeights {
  attnNorm: WeightMatrix;
  wq: WeightMatrix;
  wk: WeightMatrix;
  wv: WeightMatrix;
  wo: WeightMatrix;
  bq?: WeightMatrix;
  bk?: WeightMatrix;
  bv?: WeightMatrix;
  qNorm?: WeightMatrix;
  kNorm?: WeightMatrix;
  ffnNorm: WeightMatrix;
  wGate: WeightMatrix;
  wUp: WeightMatrix;
  wDown: WeightMatrix;
}

/** Byte progress over all weight files. */
export type WeightProgress = (bytesDone: number, bytesTotal: number, file: string) => void;

/** All weights of a model, on the GPU. */
export class ModelWeights {
  constructor(
    private readonly owner: BufferGroup,
    readonly embed: WeightMatrix,
    readonly layers: LayerWeights[],
    readonly finalNorm: WeightMatrix,
    readonly lmHead: WeightMatrix,
  ) {}

  /** Bytes allocated for weights. */
  get bytes(): number {
    return this.owner.bytes;
  }

  /** Every layer tensor and the final norm (each once), plus the LM head when it is not the embedding. */
  private *tensorsBesidesEmbedding(): Generator<WeightMatrix> {
    for (const l of this.layers) for (const m of Object.values(l) as Array<WeightMatrix | undefined>) if (m) yield m;
    yield this.finalNorm;
    if (this.lmHead !== this.embed) yield this.lmHead;
  }

  /** Weight bytes one decode step reads: every matrix and vector once, and one row of the embedding (all of it when tied). */
  get decodeBytesPerStep(): number {
    let total = this.lmHead === this.embed ? matrixBytes(this.embed) : rowBytes(this.embed.dtype, this.embed.cols);
    for (const m of this.tensorsBesidesEmbedding()) total += matrixBytes(m);
    return total;
  }

  /** The storage dtypes of the matrices, e.g. `f16` or `q4_k+q6_k+f32` (most bytes first). */
  get dtypeSummary(): string {
    const bytes = new Map<WeightDtype, number>();
    for (const m of [this.embed, ...this.tensorsBesidesEmbedding()]) if (m.rows > 1) bytes.set(m.dtype, (bytes.get(m.dtype) ?? 0) + matrixBytes(m));
    return [...bytes].sort((a, b) => b[1] - a[1]).map(([d]) => d).join('+');
  }

  /** Free every buffer. Safe to call twice. */
  destroy(): void {
    this.owner.destroy();
  }
}

/** Bytes of a weight's rows as stored. */
function matrixBytes(m: WeightMatrix): number {
  return m.rows * rowBytes(m.dtype, m.cols);
}

/** The ModelWeights of a complete set of tensors keyed by HF name; throws ModelFormatError naming what is missing. */
export function assembleWeights(owner: BufferGroup, config: ModelConfig, loaded: Map<string, WeightMatrix>, shapes = expectedShapes(config)): ModelWeights {
  const missing = [...shapes.keys()].filter((n) => !loaded.has(n));
  if (missing.length) {
    throw new ModelFormatError(
      `The weights lack ${missing.length} tensor(s) the config needs, e.g. ${missing.slice(0, 3).join(', ')}. ` +
        'The model files are incomplete or of another architecture: re-download the model, or check that config.json matches it.',
    );
  }
  const get = (n: string) => loaded.get(n) as WeightMatrix;
  const opt = (n: string) => loaded.get(n);
  const layers = Array.from({ length: config.numLayers }, (_, i) => {
    const n = layerTensorNames(i);
    return {
      attnNorm: get(n.attnNorm), wq: get(n.wq), wk: get(n.wk), wv: get(n.wv), wo: get(n.wo),
      bq: opt(n.bq), bk: opt(n.bk), bv: opt(n.bv), qNorm: opt(n.qNorm), kNorm: opt(n.kNorm),
      ffnNorm: get(n.ffnNorm), wGate: get(n.wGate), wUp: get(n.wUp), wDown: get(n.wDown),
    } satisfies LayerWeights;
  });
  const embed = get(EMBED_TOKENS);
  return new ModelWeights(owner, embed, layers, get(FINAL_NORM), config.tieEmbeddings ? embed : get(LM_HEAD));
}

/** The weight files of a source: the shards of model.safetensors.index.json, or model.safetensors. */
async function listWeightFiles(source: ModelSource): Promise<{ files: string[]; totalBytes: number | null }> {
  const INDEX = 'model.safetensors.index.json';
  if (!(await source.has(INDEX))) return { files: ['model.safetensors'], totalBytes: null };
  const text = await source.text(INDEX);
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch {
    throw new ModelFormatError(`${INDEX} is not valid JSON. Re-download the model.`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const map = isObject(index) ? index['weight_map'] : undefined;
  if (!isObject(map)) throw new ModelFormatError(`${INDEX} has no "weight_map" object. Re-download the model.`);
  for (const [tensor, file] of Object.entries(map)) {
    // Shards sit next to the index; anything path-like would fetch some other file.
    if (typeof file !== 'string' || !/^[^/\\]+\.safetensors$/.test(file)) {
      throw new ModelFormatError(`${INDEX} maps "${tensor}" to ${JSON.stringify(file)}, not a .safetensors file name. Re-download the model.`);
    }
  }
  const total = isObject(index) && isObject(index['metadata']) ? index['metadata']['total_size'] : undefined;
  const files = [...new Set(Object.values(map) as string[])].sort();
  return { files, totalBytes: typeof total === 'number' && Number.isSafeInteger(total) && total > 0 ? total : null };
}

/** Expected [rows, cols] of every tensor the config needs. Vectors are [1, n]. */
export function expectedShapes(c: ModelConfig): Map<string, [number, number]> {
  const m = new Map<string, [number, number]>();
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  m.set(EMBED_TOKENS, [c.vocabSize, c.hiddenSize]);
  m.set(FINAL_NORM, [1, c.hiddenSize]);
  if (!c.tieEmbeddings) m.set(LM_HEAD, [c.vocabSize, c.hiddenSize]);
  for (let i = 0; i < c.numLayers; i++) {
    const n = layerTensorNames(i);
    m.set(n.attnNorm, [1, c.hiddenSize]);
    m.set(n.wq, [qDim, c.hiddenSize]);
    m.set(n.wk, [kvDim, c.hiddenSize]);
    m.set(n.wv, [kvDim, c.hiddenSize]);
    m.set(n.wo, [c.hiddenSize, qDim]);
    if (c.qkvBias) {
      m.set(n.bq, [1, qDim]);
      m.set(n.bk, [1, kvDim]);
      m.set(n.bv, [1, kvDim]);
    }
    if (c.qkNorm) {
      m.set(n.qNorm, [1, c.headDim]);
      m.set(n.kNorm, [1, c.headDim]);
    }
    m.set(n.ffnNorm, [1, c.hiddenSize]);
    m.set(n.wGate, [c.intermediateSize, c.hiddenSize]);
    m.set(n.wUp, [c.intermediateSize, c.hiddenSize]);
    m.set(n.wDown, [c.hiddenSize, c.intermediateSize]);
  }
  return m;
}

function checkShape(info: TensorInfo, want: [number, number], file: string): void {
  const got = info.shape.length === 1 ? [1, info.shape[0]] : info.shape;
  if (got.length !== 2 || got[0] !== want[0] || got[1] !== want[1]) {
    throw new ModelFormatError(
      `${file}: tensor ${info.name} has shape [${info.shape.join(', ')}] but config.json implies [${want.join(', ')}]. ` +
        'The weights do not match the config: check that config.json belongs to these weights, or re-download the model.',
    );
  }
}

/** Download, convert and upload every tensor the config needs. */
export async function loadWeights(
  device: GPUDevice,
  caps: GpuCaps,
  source: ModelSource,
  config: ModelConfig,
  dtype: 'f32' | 'f16',
  onProgress: WeightProgress = () => {},
  signal?: AbortSignal,
  /** Quantize matrices to ggml blocks on load (vectors stay `dtype`). */
  quant?: OnLoadQuant,
): Promise<ModelWeights> {
  const owner = new BufferGroup(device, 'weights');
  try {
    const shapes = expectedShapes(config);
    const loaded = new Map<string, WeightMatrix>();
    const { files, totalBytes: indexTotal } = await listWeightFiles(source);
    let done = 0;
    let total = indexTotal ?? 0;
    for (const file of files) {
      const { size, body } = await source.stream(file);
      if (indexTotal === null && Number.isFinite(size)) total += size;
      const reader = new ByteStreamReader(body, file, (n) => {
        done += n;
        onProgress(done, Math.max(total, done), file);
      });
      try {
        const headerLength = readHeaderLength(await reader.read(8));
        const header = parseSafetensorsHeader(await reader.read(headerLength), Number.isFinite(size) ? size : null, file);
        for (const info of header.tensors) {
          if (signal?.aborted) throw new DOMException('Load aborted', 'AbortError');
          const gap = header.dataStart + info.begin - reader.position;
          if (gap < 0) throw new ModelFormatError(`${file}: tensor ${info.name} overlaps the one before it.`);
          await reader.skip(gap);
          const want = shapes.get(info.name);
          if (!want) {
            await reader.skip(info.end - info.begin);
            continue;
          }
          if (loaded.has(info.name)) throw new ModelFormatError(`${file}: tensor ${info.name} appears in more than one shard. Re-download the model.`);
          checkShape(info, want, file);
          const raw = await reader.read(info.end - info.begin);
          loaded.set(info.name, uploadFloatTensor(owner, caps, info.name, want, info.dtype, raw, dtype, quant && { choice: quant, sensitive: isSensitiveMatrix(info.name, config) }));
        }
      } finally {
        await reader.cancel();
      }
    }
    return assembleWeights(owner, config, loaded, shapes);
  } catch (err) {
    owner.destroy();
    throw err;
  }
}

/**
 * Upload a float tensor (raw bytes of `source` elements) as `dtype`, or, with `quant`, a matrix as ggml blocks
 * quantized from its f32 values (a matrix whose rows are not whole blocks stays `dtype`); `quant.sensitive`
 * marks a matrix the q4 mix stores with more bits.
 */
export function uploadFloatTensor(
  owner: BufferGroup,
  caps: GpuCaps,
  name: string,
  shape: [number, number],
  source: SafetensorsDtype,
  raw: Uint8Array,
  dtype: 'f32' | 'f16',
  quant?: { choice: OnLoadQuant; sensitive: boolean },
): WeightMatrix {
  if (quant && shape[0] > 1) {
    const q = quantizeOnLoad(quant.choice, convertTensor(source, raw, 'f32') as Float32Array, shape[0], shape[1], quant.sensitive);
    if (q) return uploadMatrix(owner, caps, name, shape, q.bytes, q.type);
  }
  return uploadMatrix(owner, caps, name, shape, convertTensor(source, raw, dtype), dtype);
}

/**
 * Upload a [rows, cols] weight stored as `dtype` (f32/f16 elements, or ggml blocks as bytes), split by rows
 * into parts that each fit one storage binding. Buffers are padded to whole words (kernels read u32s).
 */
export function uploadMatrix(
  owner: BufferGroup,
  caps: GpuCaps,
  name: string,
  [rows, cols]: [number, number],
  data: Float32Array | Uint16Array | Uint8Array,
  dtype: WeightDtype,
): WeightMatrix {
  const perRow = rowBytes(dtype, cols);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength !== rows * perRow) throw new RangeError(`${name}: ${bytes.byteLength} bytes for [${rows}, ${cols}] ${dtype}, expected ${rows * perRow}`);
  if (!isQuant(dtype) && data.BYTES_PER_ELEMENT !== (dtype === 'f32' ? 4 : 2)) throw new TypeError(`${name}: ${dtype} data in a ${data.constructor.name}`);
  const parts = splitRows(rows, perRow, 1, caps.maxStorageBufferBindingSize).map(([rowStart, n]) => ({
    buffer: owner.upload(`${name}[${rowStart}:${rowStart + n}]`, bytes.subarray(rowStart * perRow, (rowStart + n) * perRow)),
    rowStart,
    rows: n,
  }));
  return { name, rows, cols, dtype, parts };
}
