/**
 * Node-only: load a Hugging Face model folder (config.json plus model.safetensors, or the shards named by
 * model.safetensors.index.json) into the CPU reference model. Used by tests, benchmarks and eval.
 */
import { readFile, access } from 'node:fs/promises';
import path from 'node:path';
import { ModelFileMissingError, ModelFormatError } from '../errors';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { decodeToF32, parseSafetensorsHeader, readHeaderLength, type TensorInfo } from '../model/safetensors';
import { ReferenceModel, requiredTensorShapes } from './forward';

/** A decoded tensor with its header entry. */
export interface LoadedTensor {
  info: TensorInfo;
  data: Float32Array;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function readBytes(file: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(file);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw new ModelFileMissingError(`Cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Decode every tensor of one safetensors file to f32. */
export async function readSafetensorsFile(file: string): Promise<Map<string, LoadedTensor>> {
  const bytes = await readBytes(file);
  const name = path.basename(file);
  const headerLength = readHeaderLength(bytes.subarray(0, 8));
  if (8 + headerLength > bytes.length) {
    throw new ModelFormatError(`${name}: the file is truncated inside its header. Re-download it.`);
  }
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + headerLength), bytes.length, name);
  const out = new Map<string, LoadedTensor>();
  for (const info of header.tensors) {
    const raw = bytes.subarray(header.dataStart + info.begin, header.dataStart + info.end);
    out.set(info.name, { info, data: decodeToF32(info.dtype, raw) });
  }
  return out;
}

/** The weight files of a folder: the shards of model.safetensors.index.json when present, else model.safetensors. */
export async function listWeightFiles(dir: string): Promise<{ files: string[]; weightMap: Map<string, string> | null }> {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!(await exists(indexFile))) return { files: ['model.safetensors'], weightMap: null };
  let index: { weight_map?: Record<string, unknown> };
  try {
    index = JSON.parse(new TextDecoder().decode(await readBytes(indexFile)));
  } catch (err) {
    if (err instanceof ModelFileMissingError) throw err;
    throw new ModelFormatError('model.safetensors.index.json is not valid JSON. Re-download the model.');
  }
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null) throw new ModelFormatError('model.safetensors.index.json has no "weight_map".');
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
      throw new ModelFormatError(`model.safetensors.index.json maps "${tensor}" to ${JSON.stringify(file)}, not a file name.`);
    }
    weightMap.set(tensor, file);
  }
  return { files: [...new Set(weightMap.values())].sort(), weightMap };
}

/** Every tensor of a model folder (single file or sharded), decoded to f32. */
export async function readModelTensors(dir: string): Promise<Map<string, LoadedTensor>> {
  const { files, weightMap } = await listWeightFiles(dir);
  const all = new Map<string, LoadedTensor>();
  const from = new Map<string, string>();
  for (const file of files) {
    for (const [name, t] of await readSafetensorsFile(path.join(dir, file))) {
      if (all.has(name)) throw new ModelFormatError(`Tensor "${name}" appears in both ${from.get(name)} and ${file}.`);
      all.set(name, t);
      from.set(name, file);
    }
  }
  for (const [name, file] of weightMap ?? []) {
    if (from.get(name) !== file) {
      throw new ModelFormatError(
        `model.safetensors.index.json says "${name}" is in ${file}, but ${from.has(name) ? `it is in ${from.get(name)}` : 'no shard holds it'}.`,
      );
    }
  }
  return all;
}

/** Load config.json and the weights of a model folder into a ReferenceModel; shapes are checked against the config. */
export async function loadReferenceModel(
  dir: string,
): Promise<{ config: ModelConfig; model: ReferenceModel; tensors: Map<string, Float32Array> }> {
  let rawConfig: unknown;
  try {
    rawConfig = JSON.parse(new TextDecoder().decode(await readBytes(path.join(dir, 'config.json'))));
  } catch (err) {
    if (err instanceof ModelFileMissingError) throw err;
    throw new ModelFormatError(`${dir}/config.json is not valid JSON.`);
  }
  const config = parseModelConfig(rawConfig);
  const loaded = await readModelTensors(dir);
  for (const [name, shape] of requiredTensorShapes(config)) {
    const t = loaded.get(name);
    if (t && t.info.shape.join(',') !== shape.join(',')) {
      throw new ModelFormatError(
        `Tensor "${name}" has shape [${t.info.shape.join(', ')}] but config.json implies [${shape.join(', ')}].`,
      );
    }
  }
  const tensors = new Map([...loaded].map(([name, t]) => [name, t.data] as const));
  return { config, model: new ReferenceModel(config, tensors), tensors };
}
