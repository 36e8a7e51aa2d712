/**
 * Writes GGUF files of Hugging Face models the way llama.cpp's convert_hf_to_gguf.py + llama-quantize would:
 * metadata and tokenizer from config.json / tokenizer.json, q/k rows in llama's interleaved order, and each
 * matrix in the file's type with llama.cpp's fallbacks for rows that are not whole blocks (Q4_K → Q5_0,
 * Q5_K → Q5_1, Q6_K → Q8_0, then F16). `Q4_K_M` is llama.cpp's mix: Q6_K for the output (or the tied
 * embedding) and for attn_v / ffn_down in the first and last eighth and every third layer, Q4_K elsewhere.
 * Used by the llama.cpp agreement test and benchmark (the files are ours; llama.cpp reading them is part of
 * the check) and for real-shape speed runs with random weights.
 *
 * CLI: `tsx scripts/gguf-models.ts [--out DIR] [--models DIR]` writes the benchmark set (see GGUF_SET).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BLOCK, GGML_TYPE_IDS, isBlockType, type GgmlTypeName, type QuantType } from '../src/gpu/block-types';
import { ggufNameOfHfTensor, ggufQkInterleaved, qkRowsHfToGguf } from '../src/model/gguf-config';
import { gv, llamaMetadataFromConfig, tokenizerMetadataFromHf, writeGguf, type GgufTensorToWrite } from '../src/model/gguf-write';
import { parseModelConfig } from '../src/model/config';
import { encodeTensorBytes } from '../src/model/safetensors';
import { impliedTensorShapes } from '../src/model/random-source';
import { LM_HEAD, layerTensorNames } from '../src/model/tensor-names';
import { isSensitiveMatrix } from '../src/model/on-load-quant';
import { mulberry32 } from '../src/reference/mulberry32';
import { quantize } from '../src/reference/ggml-quantize';
import { readModelTensors } from '../src/reference/load-node';
import { sharedModelsDir } from './hub-server';

/** File types this writer produces: one type for every matrix, or llama.cpp's Q4_K_M mix. */
export const GGUF_KINDS = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q4_K', 'Q5_K', 'Q6_K', 'Q4_K_M'] as const;
export type GgufKind = (typeof GGUF_KINDS)[number];

/** llama_ftype of each kind (general.file_type). */
const FILE_TYPE: Record<GgufKind, number> = { F32: 0, F16: 1, BF16: 32, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q4_K: 15, Q5_K: 17, Q6_K: 18, Q4_K_M: 15 };

const FALLBACK: Partial<Record<GgmlTypeName, GgmlTypeName>> = { q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0' };

/**
 * The type a matrix gets in a file of `kind`, with llama.cpp's fallbacks for rows that are not whole blocks. With
 * `only`, the matrices whose HF name it does not match stay f32 (files that isolate one weight's type).
 */
export function tensorType(kind: GgufKind, hfName: string, cols: number, numLayers: number, tied: boolean, only?: RegExp): GgmlTypeName {
  if (only && !only.test(hfName)) return 'f32';
  let want: GgmlTypeName;
  if (kind === 'Q4_K_M') {
    want = isSensitiveMatrix(hfName, { numLayers, tieEmbeddings: tied }) ? 'q6_k' : 'q4_k';
  } else {
    want = kind.toLowerCase() as GgmlTypeName;
  }
  const fits = (t: GgmlTypeName) => !isBlockType(t) || cols % BLOCK[t].elems === 0;
  if (fits(want)) return want;
  const fallback = FALLBACK[want];
  return fallback && fits(fallback) ? fallback : 'f16';
}

/** A tensor as f32 values with its HF shape ([n] for vectors). */
export interface F32Tensor {
  shape: number[];
  data: Float32Array;
}

/** The bytes of `data` ([rows, cols] f32) stored as `type`. */
function encode(type: GgmlTypeName, data: Float32Array, rows: number, cols: number): Uint8Array {
  if (type === 'f32') return encodeTensorBytes('F32', data);
  if (type === 'f16') return encodeTensorBytes('F16', data);
  if (type === 'bf16') return encodeTensorBytes('BF16', data);
  return quantize(type, data, rows, cols);
}

/** What a written file holds: its bytes and, per type, the bytes of matrices stored in it. */
export interface WrittenGguf {
  bytes: Uint8Array;
  typeBytes: Record<string, number>;
}

/** Write a GGUF file of `kind` from a HF config, tokenizer files and f32 tensors keyed by HF name (`only`: tensorType). */
export function ggufFromTensors(
  configJson: Record<string, unknown>,
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  tensors: Map<string, F32Tensor>,
  kind: GgufKind,
  name: string,
  only?: RegExp,
): WrittenGguf {
  const config = parseModelConfig(configJson);
  const interleave = ggufQkInterleaved(config.architecture);
  const qk = new Set<string>();
  for (let i = 0; i < config.numLayers; i++) qk.add(layerTensorNames(i).wq).add(layerTensorNames(i).wk);
  const out: GgufTensorToWrite[] = [];
  const typeBytes: Record<string, number> = {};
  for (const [hfName, t] of tensors) {
    if (config.tieEmbeddings && hfName === LM_HEAD) continue;
    const gName = ggufNameOfHfTensor(hfName);
    if (!gName) continue;
    const [rows, cols] = t.shape.length === 1 ? [1, t.shape[0]] : t.shape;
    // Vectors (norms, biases) stay f32, as llama.cpp keeps them.
    const type: GgmlTypeName = rows === 1 || kind === 'F32' ? 'f32' : tensorType(kind, hfName, cols, config.numLayers, config.tieEmbeddings, only);
    let data = encode(type, t.data, rows, cols);
    if (interleave && qk.has(hfName)) data = qkRowsHfToGguf(data, data.byteLength / rows, config.headDim);
    if (rows > 1) typeBytes[type] = (typeBytes[type] ?? 0) + data.byteLength;
    out.push({ name: gName, dims: t.shape.length === 1 ? [cols] : [cols, rows], typeId: GGML_TYPE_IDS[type], data });
  }
  const metadata = [
    ...llamaMetadataFromConfig(configJson, { name, fileType: FILE_TYPE[kind] }),
    ...tokenizerMetadataFromHf(tokenizerJson, tokenizerConfig, { vocabSize: config.vocabSize }),
  ];
  metadata.push(['general.alignment', gv.u32(32)]);
  return { bytes: writeGguf({ metadata, tensors: out }), typeBytes };
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

function optionalJson(file: string): Record<string, unknown> {
  return fs.existsSync(file) ? readJson(file) : {};
}

/** A GGUF file of `kind` from a HF model folder (config.json, tokenizer files, safetensors). */
export async function ggufFromHfFolder(dir: string, kind: GgufKind, name = path.basename(dir), only?: RegExp): Promise<WrittenGguf> {
  const loaded = await readModelTensors(dir);
  const tensors = new Map<string, F32Tensor>([...loaded].map(([n, t]) => [n, { shape: t.info.shape, data: t.data }]));
  return ggufFromTensors(readJson(path.join(dir, 'config.json')), readJson(path.join(dir, 'tokenizer.json')), optionalJson(path.join(dir, 'tokenizer_config.json')), tensors, kind, name, only);
}

/** Random weights of a config's real shapes (uniform, ±0.05; norms near 1), seeded. */
export function randomTensors(configJson: Record<string, unknown>, seed = 1): Map<string, F32Tensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, F32Tensor>();
  for (const [name, shape] of impliedTensorShapes(configJson)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const vector = shape.length === 1;
    for (let i = 0; i < n; i++) data[i] = vector ? 1 + (rand() - 0.5) * 0.2 : (rand() - 0.5) * 0.1;
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/** The ChatML tokenizer_config the shared SmolLM2 shape folder lacks (its README says to write one). */
export const SMOLLM_TOKENIZER_CONFIG = {
  bos_token: '<|im_start|>',
  eos_token: '<|im_end|>',
  chat_template:
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
};

/** A GGUF file of SmolLM2-135M's real config and tokenizer with random weights. */
export function smollmShapeGguf(kind: GgufKind, modelsDir = sharedModelsDir()): WrittenGguf {
  const dir = path.join(modelsDir, 'smollm2-135m-shape');
  const config = readJson(path.join(dir, 'config.json'));
  return ggufFromTensors(config, readJson(path.join(dir, 'tokenizer.json')), SMOLLM_TOKENIZER_CONFIG, randomTensors(config), kind, 'SmolLM2-135M (random weights)');
}

/** The agreement and benchmark set: real models in every checked type, SmolLM2 shapes in the speed formats. */
export const GGUF_SET: Record<string, GgufKind[]> = {
  stories260k: ['F32', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'Q4_K_M', 'Q5_0', 'Q4_1', 'Q5_K'],
  'byte-llama-12l': ['F32', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'Q4_K_M', 'Q5_0', 'Q4_1', 'Q5_K'],
  'smollm2-135m-shape': ['F16', 'Q8_0', 'Q4_0', 'Q4_K_M'],
};

/** File name of a model's GGUF of `kind`. */
export function ggufFileName(model: string, kind: GgufKind): string {
  return `${model}-${kind}.gguf`;
}

/** Write (or reuse, when newer than this script's inputs) `<out>/<model>/<model>-<kind>.gguf`; returns its path. */
export async function ensureGguf(out: string, model: string, kind: GgufKind, modelsDir = sharedModelsDir()): Promise<{ file: string; typeBytes: Record<string, number> }> {
  const dir = path.join(out, model);
  const file = path.join(dir, ggufFileName(model, kind));
  const meta = `${file}.json`;
  if (fs.existsSync(file) && fs.existsSync(meta)) return { file, typeBytes: (readJson(meta) as { typeBytes: Record<string, number> }).typeBytes };
  fs.mkdirSync(dir, { recursive: true });
  const written = model === 'smollm2-135m-shape' ? smollmShapeGguf(kind, modelsDir) : await ggufFromHfFolder(path.join(modelsDir, model), kind, model);
  fs.writeFileSync(`${file}.tmp`, written.bytes);
  fs.renameSync(`${file}.tmp`, file);
  fs.writeFileSync(meta, JSON.stringify({ typeBytes: written.typeBytes }));
  return { file, typeBytes: written.typeBytes };
}

async function main(argv: string[]): Promise<void> {
  const arg = (n: string) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : undefined);
  const out = path.resolve(arg('--out') ?? '.cache/gguf');
  const modelsDir = path.resolve(arg('--models') ?? sharedModelsDir());
  for (const [model, kinds] of Object.entries(GGUF_SET)) {
    for (const kind of kinds) {
      const t0 = performance.now();
      const { file, typeBytes } = await ensureGguf(out, model, kind, modelsDir);
      console.log(`${path.relative(process.cwd(), file)}: ${JSON.stringify(typeBytes)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }
}

const entry = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
