/**
 * A GGUF writer (v3 by default; v1 and v2 for tests) following the spec byte for byte, and the metadata
 * llama.cpp's convert_hf_to_gguf.py writes for a Hugging Face Llama-family model and its tokenizer.
 * Pure: no DOM, no GPU. Used by tests and tools to make GGUF files llama.cpp itself loads.
 *
 * Layout written: header, kv pairs, tensor infos, zero padding to the alignment, then each tensor's bytes
 * padded to the alignment, with offsets assigned in order exactly as ggml's gguf.cpp expects them.
 */
import { ModelFormatError } from '../errors';
import { GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAX_DIMS, GGUF_SCALAR_BYTES, GGUF_VALUE_TYPES, type GgufValueType } from './gguf';
import { GGUF_TOKEN_TYPE, LLAMA3_SPLIT_REGEX, QWEN2_SPLIT_REGEX } from './gguf-tokenizer';

type Scalar = number | bigint | boolean | string;
/** A metadata value with its GGUF type. Arrays hold scalars of `itemType`. */
export type GgufTypedValue =
  | { type: Exclude<GgufValueType, 'array'>; value: Scalar }
  | { type: 'array'; itemType: Exclude<GgufValueType, 'array'>; value: ArrayLike<Scalar> };

/** Typed-value constructors: `gv.u32(5)`, `gv.arr('string', tokens)`. */
export const gv = {
  u32: (value: number): GgufTypedValue => ({ type: 'u32', value }),
  i32: (value: number): GgufTypedValue => ({ type: 'i32', value }),
  u64: (value: number | bigint): GgufTypedValue => ({ type: 'u64', value }),
  f32: (value: number): GgufTypedValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufTypedValue => ({ type: 'bool', value }),
  str: (value: string): GgufTypedValue => ({ type: 'string', value }),
  arr: (itemType: Exclude<GgufValueType, 'array'>, value: ArrayLike<Scalar>): GgufTypedValue => ({ type: 'array', itemType, value }),
};

/** One tensor to write: `dims` in ggml order (dims[0] = columns), `data` its exact bytes. */
export interface GgufTensorToWrite {
  name: string;
  dims: number[];
  typeId: number;
  data: Uint8Array;
}

/** What {@link writeGguf} writes. */
export interface GgufToWrite {
  version?: 1 | 2 | 3;
  alignment?: number;
  metadata: Array<[string, GgufTypedValue]>;
  tensors: GgufTensorToWrite[];
}

/** GGML_MAX_NAME: llama.cpp rejects tensor names of 64 bytes or more. */
const MAX_NAME_BYTES = 63;

class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private at = 0;
  length = 0;
  private readonly enc = new TextEncoder();

  private room(n: number): DataView {
    if (this.at + n > this.cur.length) {
      this.chunks.push(this.cur.subarray(0, this.at));
      this.cur = new Uint8Array(Math.max(1 << 16, n));
      this.at = 0;
    }
    const v = new DataView(this.cur.buffer, this.at, n);
    this.at += n;
    this.length += n;
    return v;
  }

  scalar(type: Exclude<GgufValueType, 'array' | 'string'>, x: Scalar): void {
    const v = this.room(GGUF_SCALAR_BYTES[type]!);
    switch (type) {
      case 'u8': v.setUint8(0, Number(x)); break;
      case 'i8': v.setInt8(0, Number(x)); break;
      case 'u16': v.setUint16(0, Number(x), true); break;
      case 'i16': v.setInt16(0, Number(x), true); break;
      case 'u32': v.setUint32(0, Number(x), true); break;
      case 'i32': v.setInt32(0, Number(x), true); break;
      case 'f32': v.setFloat32(0, Number(x), true); break;
      case 'f64': v.setFloat64(0, Number(x), true); break;
      case 'bool': v.setUint8(0, x ? 1 : 0); break;
      case 'u64': v.setBigUint64(0, BigInt(x), true); break;
      case 'i64': v.setBigInt64(0, BigInt(x), true); break;
    }
  }

  bytes(b: Uint8Array): void {
    new Uint8Array(this.room(b.length).buffer, this.at - b.length, b.length).set(b);
  }

  string(s: string, wide: boolean): void {
    const b = this.enc.encode(s);
    this.scalar(wide ? 'u64' : 'u32', b.length);
    this.bytes(b);
  }

  /** Everything written, as one array with `extra` zero bytes of room after it. */
  finish(extra: number): Uint8Array {
    const out = new Uint8Array(this.length + extra);
    let o = 0;
    for (const c of [...this.chunks, this.cur.subarray(0, this.at)]) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function checkScalar(key: string, type: GgufValueType, x: Scalar): void {
  const ok = type === 'string' ? typeof x === 'string' : type === 'bool' ? typeof x === 'boolean'
    : type === 'u64' || type === 'i64' ? typeof x === 'bigint' || Number.isSafeInteger(x)
      : typeof x === 'number' && (type === 'f32' || type === 'f64' || Number.isInteger(x));
  if (!ok) throw new ModelFormatError(`GGUF metadata "${key}": ${String(x)} is not a valid ${type}.`);
}

/** Serialize a GGUF file. Throws ModelFormatError for inputs llama.cpp would reject. */
export function writeGguf(spec: GgufToWrite): Uint8Array {
  const version = spec.version ?? 3;
  const wide = version !== 1;
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new ModelFormatError(`GGUF alignment ${alignment} is not a power of two.`);
  const metadata = [...spec.metadata];
  const given = metadata.find(([k]) => k === 'general.alignment');
  if (given && Number(given[1].value) !== alignment) throw new ModelFormatError(`general.alignment ${String(given[1].value)} contradicts alignment ${alignment}.`);
  if (!given && alignment !== GGUF_DEFAULT_ALIGNMENT) metadata.push(['general.alignment', gv.u32(alignment)]);

  const out = new ByteSink();
  out.bytes(new Uint8Array([0x47, 0x47, 0x55, 0x46]));
  out.scalar('u32', version);
  out.scalar(wide ? 'u64' : 'u32', spec.tensors.length);
  out.scalar(wide ? 'u64' : 'u32', metadata.length);
  const keys = new Set<string>();
  for (const [key, tv] of metadata) {
    if (keys.has(key)) throw new ModelFormatError(`GGUF metadata key "${key}" is given twice.`);
    keys.add(key);
    out.string(key, wide);
    out.scalar('u32', GGUF_VALUE_TYPES.indexOf(tv.type));
    if (tv.type === 'array') {
      out.scalar('u32', GGUF_VALUE_TYPES.indexOf(tv.itemType));
      out.scalar(wide ? 'u64' : 'u32', tv.value.length);
      for (let i = 0; i < tv.value.length; i++) writeScalar(out, key, tv.itemType, tv.value[i], wide);
    } else {
      writeScalar(out, key, tv.type, tv.value, wide);
    }
  }

  const names = new Set<string>();
  let offset = 0;
  const placed = spec.tensors.map((t) => {
    checkTensor(t, names);
    const at = offset;
    offset += Math.ceil(t.data.length / alignment) * alignment;
    out.string(t.name, wide);
    out.scalar('u32', t.dims.length);
    for (const d of t.dims) out.scalar(wide ? 'u64' : 'u32', d);
    out.scalar('u32', t.typeId);
    out.scalar('u64', at);
    return at;
  });
  const dataStart = Math.ceil(out.length / alignment) * alignment;
  const file = out.finish(dataStart - out.length + offset);
  spec.tensors.forEach((t, i) => file.set(t.data, dataStart + placed[i]));
  return file;
}

function writeScalar(out: ByteSink, key: string, type: Exclude<GgufValueType, 'array'>, x: Scalar, wide: boolean): void {
  checkScalar(key, type, x);
  if (type === 'string') out.string(x as string, wide);
  else out.scalar(type, x);
}

function checkTensor(t: GgufTensorToWrite, names: Set<string>): void {
  const fail = (what: string) => new ModelFormatError(`GGUF tensor "${t.name}": ${what}.`);
  if (names.has(t.name)) throw fail('is given twice');
  names.add(t.name);
  if (new TextEncoder().encode(t.name).length > MAX_NAME_BYTES) throw fail(`the name is longer than ${MAX_NAME_BYTES} bytes`);
  if (t.dims.length < 1 || t.dims.length > GGUF_MAX_DIMS) throw fail(`has ${t.dims.length} dims; 1 to ${GGUF_MAX_DIMS} allowed`);
  const type = GGML_TYPES[t.typeId];
  if (!type) throw fail(`type id ${t.typeId} is not a ggml type`);
  if (t.dims[0] % type.blockElems !== 0) throw fail(`${t.dims[0]} columns is not a multiple of the ${type.name} block size ${type.blockElems}`);
  const want = (t.dims.reduce((a, b) => a * b, 1) / type.blockElems) * type.blockBytes;
  if (t.data.length !== want) throw fail(`dims [${t.dims.join(', ')}] of ${type.name} need ${want} bytes, got ${t.data.length}`);
}

type Json = Record<string, unknown>;

/** Name of a special token given as a string or an AddedToken object, as tokenizer_config.json does. */
function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** The `tokenizer.ggml.pre` name llama.cpp uses for a byte-level tokenizer.json's pre-tokenizer. */
function preNameOf(pre: Json | null, hasMerges: boolean): string {
  const parts = pre?.type === 'Sequence' ? (pre.pretokenizers as Json[]) : pre ? [pre] : [];
  const kinds = parts.map((p) => p.type).join('+');
  const regex = (parts[0]?.pattern as Json | undefined)?.Regex;
  if (kinds === 'ByteLevel' && parts[0].use_regex !== false) return 'gpt-2';
  if (kinds === 'Digits+ByteLevel' && parts[0].individual_digits === true) return 'smollm';
  if (kinds === 'Split+ByteLevel' && regex === QWEN2_SPLIT_REGEX) return 'qwen2';
  if (kinds === 'Split+ByteLevel' && regex === LLAMA3_SPLIT_REGEX) return 'llama-bpe';
  // Without merges every byte is its own token, so any pre-tokenizer gives the same ids.
  if (!hasMerges) return 'gpt-2';
  throw new ModelFormatError(
    `tokenizer.json has a pre-tokenizer (${kinds || 'none'}) that llama.cpp has no name for; pass the "pre" option explicitly.`,
  );
}

/** The special tokens a TemplateProcessing post-processor (alone or in a Sequence) puts first and last. */
function templateEnds(post: Json | null): [string | null, string | null] {
  const tp = post?.type === 'Sequence' ? (post.processors as Json[]).find((p) => p.type === 'TemplateProcessing') : post;
  const single = tp?.type === 'TemplateProcessing' ? (tp.single as Json[]) : [];
  const idOf = (p: Json | undefined) => ((p?.SpecialToken as Json | undefined)?.id as string | undefined) ?? null;
  return single.length > 1 ? [idOf(single[0]), idOf(single[single.length - 1])] : [null, null];
}

/** Whether a SentencePiece-style tokenizer.json prepends `▁`: a Prepend normalizer (legacy) or a prefixing Metaspace. */
function spmSpacePrefix(tokenizerJson: Json): boolean {
  if (JSON.stringify(tokenizerJson.normalizer ?? null).includes('"Prepend"')) return true;
  const pre = tokenizerJson.pre_tokenizer as Json | null | undefined;
  const parts = pre?.type === 'Sequence' ? (pre.pretokenizers as Json[]) : pre ? [pre] : [];
  const ms = parts.find((p) => p.type === 'Metaspace');
  return ms !== undefined && (ms.prepend_scheme !== undefined ? ms.prepend_scheme !== 'never' : ms.add_prefix_space !== false);
}

/** Options for {@link tokenizerMetadataFromHf}. */
export interface TokenizerMetadataOptions {
  /** Pad the token list to this size with `[PAD<i>]` user-defined tokens (config.json's vocab_size). */
  vocabSize?: number;
  /** Override the detected `tokenizer.ggml.pre`. */
  pre?: string;
}

/**
 * The `tokenizer.ggml.*` metadata llama.cpp's converter writes for a HF tokenizer: `llama` (SentencePiece
 * BPE with byte fallback; scores rank pieces by the first merge that forms them) or `gpt2` (byte-level BPE).
 */
export function tokenizerMetadataFromHf(tokenizerJson: Json, tokenizerConfig: Json, options: TokenizerMetadataOptions = {}): Array<[string, GgufTypedValue]> {
  const model = tokenizerJson.model as Json | undefined;
  if (!model || model.type !== 'BPE') throw new ModelFormatError(`tokenizer.json model type ${String(model?.type)} is not BPE; only BPE tokenizers can be written.`);
  const vocab = model.vocab as Record<string, number>;
  const merges = ((model.merges as Array<string | string[]>) ?? []).map((m) => (Array.isArray(m) ? m : m.split(' ')));
  const added = new Map<number, Json>();
  for (const t of (tokenizerJson.added_tokens as Json[] | undefined) ?? []) added.set(t.id as number, t);
  const spm = model.byte_fallback === true;
  const byteLevelPre = JSON.stringify(tokenizerJson.pre_tokenizer ?? null).includes('"ByteLevel"');
  if (!spm && !byteLevelPre) throw new ModelFormatError('tokenizer.json is neither SentencePiece-style BPE (byte_fallback) nor byte-level BPE.');

  const byId = new Map<number, string>();
  for (const [t, id] of Object.entries(vocab)) byId.set(id, t);
  for (const [id, t] of added) byId.set(id, t.content as string);
  let n = options.vocabSize ?? 0;
  for (const id of byId.keys()) n = Math.max(n, id + 1);
  const unk = tokenName(tokenizerConfig.unk_token) ?? (model.unk_token as string | null);
  // A piece's score ranks it by the first merge that forms it, so SentencePiece's highest-score-first merging
  // reproduces the merge order; pieces no merge forms come after.
  const formedAt = new Map<string, number>();
  merges.forEach(([l, r]) => { if (!formedAt.has(l + r)) formedAt.set(l + r, formedAt.size); });
  let unformed = formedAt.size;

  const tokens: string[] = [];
  const types: number[] = [];
  const scores: number[] = [];
  for (let id = 0; id < n; id++) {
    const t = byId.get(id);
    const a = added.get(id);
    let type: number = GGUF_TOKEN_TYPE.normal;
    let score = 0;
    if (t === undefined) type = GGUF_TOKEN_TYPE.userDefined;
    else if (spm && t === unk) type = GGUF_TOKEN_TYPE.unknown;
    else if (a) type = a.special ? GGUF_TOKEN_TYPE.control : GGUF_TOKEN_TYPE.userDefined;
    else if (spm && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) type = GGUF_TOKEN_TYPE.byte;
    else if (spm) score = -(formedAt.get(t) ?? unformed++);
    tokens.push(t ?? `[PAD${id}]`);
    types.push(type);
    scores.push(score);
  }

  const meta: Array<[string, GgufTypedValue]> = [['tokenizer.ggml.model', gv.str(spm ? 'llama' : 'gpt2')]];
  meta.push(['tokenizer.ggml.pre', gv.str(options.pre ?? (spm ? 'default' : preNameOf(tokenizerJson.pre_tokenizer as Json | null, merges.length > 0)))]);
  meta.push(['tokenizer.ggml.tokens', gv.arr('string', tokens)]);
  if (spm) meta.push(['tokenizer.ggml.scores', gv.arr('f32', scores)]);
  meta.push(['tokenizer.ggml.token_type', gv.arr('i32', types)]);
  if (!spm) meta.push(['tokenizer.ggml.merges', gv.arr('string', merges.map((m) => m.join(' ')))]);
  const ids = new Map(tokens.map((t, i) => [t, i]));
  if (ids.size !== tokens.length) {
    const dup = tokens.find((t, i) => ids.get(t) !== i)!;
    throw new ModelFormatError(`tokenizer.json has token "${dup}" at two ids; llama.cpp rejects duplicate tokens.`);
  }
  const special = (key: string, name: unknown) => {
    const id = ids.get(tokenName(name) ?? '\0none');
    if (id !== undefined) meta.push([`tokenizer.ggml.${key}`, gv.u32(id)]);
  };
  special('bos_token_id', tokenizerConfig.bos_token);
  special('eos_token_id', tokenizerConfig.eos_token);
  if (spm) special('unknown_token_id', unk);
  special('padding_token_id', tokenizerConfig.pad_token);
  // tokenizer_config's flags win; otherwise the post-processor says what the fast tokenizer adds.
  const [postBos, postEos] = templateEnds(tokenizerJson.post_processor as Json | null);
  const bos = tokenName(tokenizerConfig.bos_token);
  const eos = tokenName(tokenizerConfig.eos_token);
  const addBos = typeof tokenizerConfig.add_bos_token === 'boolean' ? tokenizerConfig.add_bos_token : bos !== null && postBos === bos;
  const addEos = typeof tokenizerConfig.add_eos_token === 'boolean' ? tokenizerConfig.add_eos_token : eos !== null && postEos === eos;
  meta.push(['tokenizer.ggml.add_bos_token', gv.bool(addBos)]);
  meta.push(['tokenizer.ggml.add_eos_token', gv.bool(addEos)]);
  if (spm) meta.push(['tokenizer.ggml.add_space_prefix', gv.bool(spmSpacePrefix(tokenizerJson))]);
  if (typeof tokenizerConfig.chat_template === 'string') meta.push(['tokenizer.chat_template', gv.str(tokenizerConfig.chat_template)]);
  return meta;
}

/** Options for {@link llamaMetadataFromConfig}. */
export interface ModelMetadataOptions {
  name?: string;
  /** llama_ftype of the weights (0 all f32, 1 mostly f16, 7 q8_0, 15 q4_k_m, ...). */
  fileType?: number;
}

/**
 * The `general.*` and `<arch>.*` keys llama.cpp's converter writes for a HF llama/mistral/qwen2/qwen3
 * config.json. Llama 3 rope_scaling has no keys: also write an f32 `rope_freqs.weight` tensor of
 * `llama3RopeFreqs(...)` (gguf-config.ts), as the converter does.
 */
export function llamaMetadataFromConfig(config: Json, options: ModelMetadataOptions = {}): Array<[string, GgufTypedValue]> {
  const modelType = String(config.model_type);
  const arch = modelType === 'mistral' ? 'llama' : modelType;
  if (!['llama', 'qwen2', 'qwen3'].includes(arch)) throw new ModelFormatError(`config.json model_type "${modelType}" cannot be written as GGUF here.`);
  const num = (k: string, fallback?: number): number => {
    const v = config[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError(`config.json "${k}" is missing or not a number.`);
    return v;
  };
  const heads = num('num_attention_heads');
  const headDim = num('head_dim', num('hidden_size') / heads);
  const rs = config.rope_scaling as Json | null | undefined;
  const ropeType = rs ? (rs.rope_type ?? rs.type) : undefined;
  if (ropeType !== undefined && ropeType !== 'default' && ropeType !== 'llama3') {
    throw new ModelFormatError(`rope_scaling "${String(ropeType)}" cannot be written here.`);
  }
  const meta: Array<[string, GgufTypedValue]> = [
    ['general.architecture', gv.str(arch)],
    ['general.type', gv.str('model')],
    ['general.name', gv.str(options.name ?? String(config._name_or_path ?? 'model'))],
    [`${arch}.block_count`, gv.u32(num('num_hidden_layers'))],
    [`${arch}.context_length`, gv.u32(num('max_position_embeddings', 2048))],
    [`${arch}.embedding_length`, gv.u32(num('hidden_size'))],
    [`${arch}.feed_forward_length`, gv.u32(num('intermediate_size'))],
    [`${arch}.attention.head_count`, gv.u32(heads)],
    [`${arch}.attention.head_count_kv`, gv.u32(num('num_key_value_heads', heads))],
    [`${arch}.rope.freq_base`, gv.f32(num('rope_theta', 10000))],
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(num('rms_norm_eps', 1e-6))],
    [`${arch}.attention.key_length`, gv.u32(headDim)],
    [`${arch}.attention.value_length`, gv.u32(headDim)],
    [`${arch}.rope.dimension_count`, gv.u32(headDim)],
    [`${arch}.vocab_size`, gv.u32(num('vocab_size'))],
    ['general.file_type', gv.u32(options.fileType ?? 0)],
    ['general.quantization_version', gv.u32(2)],
  ];
  return meta;
}
