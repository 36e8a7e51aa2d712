/**
 * GGUF tokenizer metadata (`tokenizer.ggml.*`) to a Hugging Face tokenizer.json + tokenizer_config.json pair
 * that transformers.js runs like the model's own files. Pure: no DOM, no GPU.
 *
 * - `llama` (SentencePiece BPE with scores): BPE with byte fallback, merges derived from vocab + scores as
 *   transformers' `generate_merges` (used by its GGUF loader) does, and the `▁` normalizer / decoder chain of
 *   HF's Llama tokenizer.json.
 * - `gpt2` (byte-level BPE): vocab + merges as stored, and the pre-tokenizer llama.cpp picks for
 *   `tokenizer.ggml.pre` written the way the original tokenizer.json spells it.
 * Defaults (add_bos, space prefix, clean-up) follow llama.cpp's llama-vocab.cpp, which defines what a GGUF means.
 */
import { ModelFormatError, UnsupportedArchitectureError } from '../errors';
import type { GgufValue } from './gguf';

/** llama.cpp's token types (`tokenizer.ggml.token_type`). */
export const GGUF_TOKEN_TYPE = { undefined: 0, normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

type Json = Record<string, unknown>;
type Meta = ReadonlyMap<string, GgufValue>;

/** The two files transformers.js' PreTrainedTokenizer is built from. */
export interface HfTokenizerFiles {
  tokenizerJson: Json;
  tokenizerConfig: Json;
}

/** Split regexes as HF tokenizer.json files write them. */
export const QWEN2_SPLIT_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
export const LLAMA3_SPLIT_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** Byte-level pre-tokenizer families: GPT-2's regex, GPT-2's after single digits, or a Split regex. */
export type BpeFamily = 'gpt2' | 'digits' | 'qwen2' | 'llama3';

/** `tokenizer.ggml.pre` names, their family, and llama.cpp's defaults for clean-up and BOS. */
export const GGUF_PRE_TOKENIZERS: Record<string, { family: BpeFamily; cleanUp: boolean; addBos: boolean }> = {
  default: { family: 'gpt2', cleanUp: true, addBos: false },
  'gpt-2': { family: 'gpt2', cleanUp: true, addBos: false },
  'phi-2': { family: 'gpt2', cleanUp: true, addBos: false },
  mpt: { family: 'gpt2', cleanUp: true, addBos: false },
  olmo: { family: 'gpt2', cleanUp: true, addBos: false },
  smollm: { family: 'digits', cleanUp: false, addBos: false },
  starcoder: { family: 'digits', cleanUp: true, addBos: false },
  refact: { family: 'digits', cleanUp: true, addBos: false },
  codeshell: { family: 'digits', cleanUp: true, addBos: false },
  qwen2: { family: 'qwen2', cleanUp: false, addBos: false },
  'deepseek-r1-qwen': { family: 'qwen2', cleanUp: false, addBos: false },
  stablelm2: { family: 'qwen2', cleanUp: true, addBos: false },
  megrez: { family: 'qwen2', cleanUp: true, addBos: false },
  'llama-bpe': { family: 'llama3', cleanUp: true, addBos: true },
  llama3: { family: 'llama3', cleanUp: true, addBos: true },
  'llama-v3': { family: 'llama3', cleanUp: true, addBos: true },
  dbrx: { family: 'llama3', cleanUp: true, addBos: false },
  'smaug-bpe': { family: 'llama3', cleanUp: true, addBos: false },
};

const byteLevel = (trimOffsets: boolean, useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: useRegex });
const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });

/** The tokenizer.json pre-tokenizer of a byte-level family, as the models' own files have it. */
export function bpePreTokenizer(family: BpeFamily): Json {
  switch (family) {
    case 'gpt2': return byteLevel(true, true);
    case 'digits': return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true, true)] };
    case 'qwen2': return { type: 'Sequence', pretokenizers: [split(QWEN2_SPLIT_REGEX), byteLevel(false, false)] };
    case 'llama3': return { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT_REGEX), byteLevel(true, false)] };
  }
}

function bad(what: string): ModelFormatError {
  return new ModelFormatError(`GGUF tokenizer metadata: ${what}. The file is corrupt or incomplete; re-download it or pick another file.`);
}

function stringArray(meta: Meta, key: string): string[] {
  const v = meta.get(key);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`"${key}" is missing or not a list of strings`);
  return v as string[];
}

function numberArray(meta: Meta, key: string, length: number, fallback: number): number[] {
  const v = meta.get(key);
  if (v === undefined) return new Array<number>(length).fill(fallback);
  if (!Array.isArray(v) || v.length < length || !v.every((x) => typeof x === 'number')) {
    throw bad(`"${key}" should list a number for each of the ${length} tokens`);
  }
  return v as number[];
}

function idOf(meta: Meta, key: string, n: number): number | null {
  const v = meta.get(key);
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < n ? v : null;
}

function flag(meta: Meta, key: string, fallback: boolean): boolean {
  const v = meta.get(key);
  return typeof v === 'boolean' ? v : fallback;
}

/**
 * Merges for a SentencePiece BPE vocab, as transformers' `generate_merges(vocab, scores)`: every split of a
 * piece into two pieces, pieces by descending score, splits of one piece by ascending ids. Only normal
 * tokens take part: control, byte and unknown tokens never form from characters.
 */
export function spmMergesFromScores(tokens: readonly string[], scores: readonly number[], types: readonly number[]): Array<[string, string]> {
  const normal = (i: number) => types[i] === GGUF_TOKEN_TYPE.normal || types[i] === GGUF_TOKEN_TYPE.undefined;
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => { if (normal(i) && !ids.has(t)) ids.set(t, i); });
  const found: Array<{ l: string; r: string; score: number; ll: number; rl: number; order: number }> = [];
  for (let i = 0; i < tokens.length; i++) {
    if (!normal(i)) continue;
    const chars = Array.from(tokens[i]);
    const local: Array<{ l: string; r: string; li: number; ri: number; ll: number; rl: number }> = [];
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join('');
      const r = chars.slice(k).join('');
      const li = ids.get(l);
      const ri = ids.get(r);
      if (li !== undefined && ri !== undefined) local.push({ l, r, li, ri, ll: k, rl: chars.length - k });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    for (const m of local) found.push({ l: m.l, r: m.r, score: scores[i], ll: m.ll, rl: m.rl, order: found.length });
  }
  found.sort((a, b) => b.score - a.score || b.ll - a.ll || b.rl - a.rl || a.order - b.order);
  return found.map((m) => [m.l, m.r]);
}

/** The TemplateProcessing post-processor that adds BOS/EOS, or null when neither is added. */
function postProcessor(bos: string | null, bosId: number | null, eos: string | null, eosId: number | null): Json | null {
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  if (bos === null && eos === null) return null;
  const part = (name: string, typeId: number) => [
    ...(bos !== null ? [special(bos, typeId)] : []), seq(name, typeId), ...(eos !== null ? [special(eos, typeId)] : []),
  ];
  const tokens: Json = {};
  if (bos !== null) tokens[bos] = { id: bos, ids: [bosId], tokens: [bos] };
  if (eos !== null) tokens[eos] = { id: eos, ids: [eosId], tokens: [eos] };
  return { type: 'TemplateProcessing', single: part('A', 0), pair: [...part('A', 0), ...part('B', 1)], special_tokens: tokens };
}

const SPIECE = '\u2581';

/** Build tokenizer.json and tokenizer_config.json objects from GGUF metadata. */
export function tokenizerFilesFromGguf(meta: Meta): HfTokenizerFiles {
  const model = meta.get('tokenizer.ggml.model');
  if (model !== 'llama' && model !== 'gpt2') {
    throw new UnsupportedArchitectureError(
      `GGUF tokenizer model "${String(model)}" is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE)). Pick another model.`,
    );
  }
  const tokens = stringArray(meta, 'tokenizer.ggml.tokens');
  const n = tokens.length;
  if (n === 0) throw bad('"tokenizer.ggml.tokens" is empty');
  const types = numberArray(meta, 'tokenizer.ggml.token_type', n, GGUF_TOKEN_TYPE.normal);
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => {
    if (t in vocab) throw bad(`token "${t}" appears twice (ids ${vocab[t]} and ${i})`);
    vocab[t] = i;
  });
  const spm = model === 'llama';
  const pre = spm ? null : (meta.get('tokenizer.ggml.pre') ?? 'default');
  const preInfo = pre === null ? null : GGUF_PRE_TOKENIZERS[String(pre)];
  if (pre !== null && !preInfo) {
    throw new UnsupportedArchitectureError(
      `GGUF pre-tokenizer "${String(pre)}" is not supported (supported: ${Object.keys(GGUF_PRE_TOKENIZERS).join(', ')}). Pick another model.`,
    );
  }

  const bosId = idOf(meta, 'tokenizer.ggml.bos_token_id', n) ?? (spm && n > 1 ? 1 : null);
  const eosId = idOf(meta, 'tokenizer.ggml.eos_token_id', n) ?? (spm && n > 2 ? 2 : null);
  const unkId = idOf(meta, 'tokenizer.ggml.unknown_token_id', n) ?? (spm ? Math.max(0, types.indexOf(GGUF_TOKEN_TYPE.unknown)) : null);
  const padId = idOf(meta, 'tokenizer.ggml.padding_token_id', n);
  const name = (id: number | null) => (id === null ? null : tokens[id]);
  const addBos = flag(meta, 'tokenizer.ggml.add_bos_token', spm || preInfo!.addBos) && bosId !== null;
  const addEos = flag(meta, 'tokenizer.ggml.add_eos_token', false) && eosId !== null;

  // Control and unknown tokens become special added tokens, user-defined ones plain added tokens, as in HF's converters.
  const addedTokens = tokens.flatMap((content, id) => {
    const t = types[id];
    const special = t === GGUF_TOKEN_TYPE.control || t === GGUF_TOKEN_TYPE.unknown;
    if (!special && t !== GGUF_TOKEN_TYPE.userDefined) return [];
    return [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special }];
  });

  let merges: Array<[string, string]>;
  let body: Json;
  if (spm) {
    const scores = numberArray(meta, 'tokenizer.ggml.scores', n, 0);
    merges = spmMergesFromScores(tokens, scores, types);
    const spacePrefix = flag(meta, 'tokenizer.ggml.add_space_prefix', true);
    const replace = { type: 'Replace', pattern: { String: ' ' }, content: SPIECE };
    body = {
      normalizer: spacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: SPIECE }, replace] } : replace,
      pre_tokenizer: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: SPIECE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
          ...(spacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
    };
  } else {
    const raw = meta.get('tokenizer.ggml.merges') ?? [];
    if (!Array.isArray(raw) || !raw.every((m) => typeof m === 'string')) throw bad('"tokenizer.ggml.merges" is not a list of strings');
    merges = (raw as string[]).map((m, i) => {
      const at = m.indexOf(' ', 1); // llama.cpp splits at the first space after the first character
      if (at < 0) throw bad(`merge ${i} ("${m}") has no space between its two parts`);
      return [m.slice(0, at), m.slice(at + 1)];
    });
    body = {
      normalizer: preInfo!.family === 'qwen2' ? { type: 'NFC' } : null,
      pre_tokenizer: bpePreTokenizer(preInfo!.family),
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    };
  }

  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: body.normalizer,
    pre_tokenizer: body.pre_tokenizer,
    post_processor: postProcessor(addBos ? name(bosId) : null, bosId, addEos ? name(eosId) : null, eosId),
    decoder: body.decoder,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: name(unkId),
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: spm,
      byte_fallback: spm,
      ignore_merges: preInfo?.family === 'llama3',
      vocab,
      merges,
    },
  };
  const chatTemplate = meta.get('tokenizer.chat_template');
  const tokenizerConfig: Json = {
    tokenizer_class: spm ? 'LlamaTokenizer' : 'PreTrainedTokenizerFast',
    bos_token: name(bosId),
    eos_token: name(eosId),
    unk_token: name(unkId),
    pad_token: name(padId),
    add_bos_token: addBos,
    add_eos_token: addEos,
    clean_up_tokenization_spaces: spm ? false : preInfo!.cleanUp,
    ...(spm ? { legacy: false } : {}),
    ...(typeof chatTemplate === 'string' ? { chat_template: chatTemplate } : {}),
  };
  return { tokenizerJson, tokenizerConfig };
}
