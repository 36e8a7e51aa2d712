/**
 * Streams safetensors files (single or sharded) from a ModelSource to the GPU, converting each tensor to
 * the storage dtype and splitting matrices larger than one storage binding. Owns the weight buffers.
 */
import { ModelFormatError } from '../errors';
import { BufferGroup } from '../gpu/buffers';
import type { GpuCaps } from '../gpu/device';
import { splitRows, type WeightMatrix } from '../gpu/tensor';
import type { ModelSource } from './source';
import { ByteStreamReader } from './byte-reader';
import type { ModelConfig } from './config';
import { convertTensor, parseSafetensorsHeader, readHeaderLength, type TensorInfo } from './safetensors';
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

  /** Weight bytes one decode step reads: every matrix and vector once, and one row of the embedding (all of it when tied). */
  get decodeBytesPerStep(): number {
    const size = (m: WeightMatrix | undefined) => (m ? m.rows * m.cols * (m.dtype === 'f16' ? 2 : 4) : 0);
    let total = size(this.finalNorm) + size(this.lmHead);
    if (this.lmHead !== this.embed) total += this.embed.cols * (this.embed.dtype === 'f16' ? 2 : 4);
    for (const l of this.layers) for (const m of Object.values(l) as WeightMatrix[]) total += size(m);
    return total;
  }

  /** Free every buffer. Safe to call twice. */
  destroy(): void {
    this.owner.destroy();
  }
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
          const data = convertTensor(info.dtype, await reader.read(info.end - info.begin), dtype);
          loaded.set(info.name, uploadMatrix(owner, caps, info.name, want, data, dtype));
        }
      } finally {
        await reader.cancel();
      }
    }
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
  } catch (err) {
    owner.destroy();
    throw err;
  }
}

function uploadMatrix(
  owner: BufferGroup,
  caps: GpuCaps,
  name: string,
  [rows, cols]: [number, number],
  data: Float32Array | Uint16Array,
  dtype: 'f32' | 'f16',
): WeightMatrix {
  const parts = splitRows(rows, cols, data.BYTES_PER_ELEMENT, caps.maxStorageBufferBindingSize).map(([rowStart, n]) => ({
    buffer: owner.upload(`${name}[${rowStart}:${rowStart + n}]`, data.subarray(rowStart * cols, (rowStart + n) * cols)),
    rowStart,
    rows: n,
  }));
  return { name, rows, cols, dtype, parts };
}
