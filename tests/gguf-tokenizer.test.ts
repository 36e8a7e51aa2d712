/**
 * GGUF tokenizer metadata → tokenizer.json: the converted tokenizer must encode and decode exactly like the
 * model's own tokenizer.json (stories260k SentencePiece from the shared GGUF files; SmolLM2 and byte-llama
 * byte-level BPE through GGUFs written by tokenizerMetadataFromHf).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedArchitectureError } from '../src/errors';
import { ByteStreamReader } from '../src/model/byte-reader';
import { readGgufHeader, type GgufValue } from '../src/model/gguf';
import { bpePreTokenizer, spmMergesFromScores, tokenizerFilesFromGguf, type HfTokenizerFiles } from '../src/model/gguf-tokenizer';
import { tokenizerMetadataFromHf, writeGguf } from '../src/model/gguf-write';
import { loadTokenizer } from '../src/model/tokenizer';
import { DirSource } from './helpers/dir-source';

const MODELS = '/work/shared/models';
const json = (f: string) => JSON.parse(fs.readFileSync(path.join(MODELS, f), 'utf8'));
type Json = Record<string, unknown>;

async function metadataOf(bytes: Uint8Array): Promise<Map<string, GgufValue>> {
  const h = await readGgufHeader(new ByteStreamReader(new Blob([new Uint8Array(bytes)]).stream(), 'x.gguf'), bytes.length, 'x.gguf');
  return h.metadata;
}

/** Write a tokenizer-only GGUF from HF files, parse it back and convert it. */
async function viaGguf(tokenizerJson: Json, tokenizerConfig: Json): Promise<{ meta: Map<string, GgufValue>; files: HfTokenizerFiles }> {
  const meta = await metadataOf(writeGguf({ metadata: tokenizerMetadataFromHf(tokenizerJson, tokenizerConfig), tensors: [] }));
  return { meta, files: tokenizerFilesFromGguf(meta) };
}

const hfTok = (j: Json, c: Json) => new PreTrainedTokenizer(j, c);

const TEXTS = [
  'Once upon a time', 'Tom and Sue went to the', 'Once upon a time, there was a little girl named Lily. She loved to play outside.',
  '', ' ', 'a', '  leading and trailing  ', 'multiple   spaces\tand\t\ttabs\n\nnew\nlines\r\n   \n',
  'Digits 0123456789 and 3.14159, 1,000,000 and 2024-01-02', 'unicode: héllo wörld — “quotes” ½ ñ Ω', '日本語のテキスト', 'emoji 🎉🙂👍🏽',
  'byte fallback: \u0001\u0007 ÿ \u{10FFFF}', 'specials <s> and </s> and <unk> inline<s>x</s>', "it's don't we'll THEY'RE",
  'ALL CAPS and MiXeD', 'Lily\nLily', '<|im_start|>user\nhi<|im_end|>\n<|endoftext|>', 'code: for (let i = 0; i < n; i++) { x += i; }',
];

/** Same ids for every text (with and without special tokens) and same text for every decode. */
function expectSameTokenizer(a: PreTrainedTokenizer, b: PreTrainedTokenizer, vocabSize: number, cleanUp?: boolean): void {
  const opts = cleanUp === undefined ? {} : { clean_up_tokenization_spaces: cleanUp };
  for (const text of TEXTS) {
    for (const add_special_tokens of [true, false]) {
      const ids = b.encode(text, { add_special_tokens });
      expect(a.encode(text, { add_special_tokens }), JSON.stringify(text)).toEqual(ids);
      if (ids.length === 0) continue;
      for (const skip_special_tokens of [false, true]) {
        expect(a.decode(ids, { skip_special_tokens, ...opts })).toBe(b.decode(ids, { skip_special_tokens, ...opts }));
      }
    }
  }
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % vocabSize;
  for (let k = 0; k < 50; k++) {
    const ids = Array.from({ length: 1 + (k % 12) }, rand);
    expect(a.decode(ids, opts), JSON.stringify(ids)).toBe(b.decode(ids, opts));
  }
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('stories260k (SentencePiece) from the shared GGUF files', async () => {
  const ref = hfTok(json('stories260k/tokenizer.json'), json('stories260k/tokenizer_config.json'));
  for (const file of ['stories260k-f32-v3.gguf', 'stories260k-f32-ggufv1.gguf']) {
    const files = tokenizerFilesFromGguf(await metadataOf(fs.readFileSync(path.join(MODELS, 'stories260k', file))));

    it(`${file}: encodes and decodes like tokenizer.json`, () => {
      expectSameTokenizer(hfTok(files.tokenizerJson, files.tokenizerConfig), ref, 512);
      expect(files.tokenizerConfig).toMatchObject({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false });
      const model = files.tokenizerJson.model as Json;
      expect(new Set((model.merges as string[][]).map((m) => m.join(' ')))).toEqual(
        new Set((json('stories260k/tokenizer.json').model.merges as string[][]).map((m) => m.join(' '))),
      );
    });
  }

  it('gives the golden ids through the engine tokenizer glue', async () => {
    const files = tokenizerFilesFromGguf(await metadataOf(fs.readFileSync(path.join(MODELS, 'stories260k/stories260k-f32-v3.gguf'))));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-gguf-tok-'));
    tmpDirs.push(dir);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig));
    const tok = await loadTokenizer(new DirSource(dir), [2]);
    expect(tok.encodeText('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tok.encodeText('Tom and Sue went to the')).toEqual([1, 274, 287, 269, 301, 425, 411, 263, 377, 267, 265]);
    expect(tok.decode([432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426])).toBe(', there was a little girl named Lily.');
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
  });
});

describe('byte-level BPE through written GGUFs', async () => {
  const smolJson = json('smollm2-135m-shape/tokenizer.json');
  const smolConfig: Json = {
    bos_token: '<|im_start|>', eos_token: '<|im_end|>', clean_up_tokenization_spaces: false,
    chat_template: "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
  };
  const smol = await viaGguf(smolJson, smolConfig);
  const smolRef = hfTok(smolJson, smolConfig);

  it('SmolLM2: pre "smollm", same ids, decodes and chat rendering as tokenizer.json', () => {
    expect(smol.meta.get('tokenizer.ggml.pre')).toBe('smollm');
    expect(smol.meta.get('tokenizer.ggml.add_bos_token')).toBe(false);
    expect((smol.meta.get('tokenizer.ggml.merges') as string[]).length).toBe(48900);
    const [a, b] = [hfTok(smol.files.tokenizerJson, smol.files.tokenizerConfig), smolRef];
    expectSameTokenizer(a, b, 49152);
    const chat = [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello!' }];
    const render = (t: PreTrainedTokenizer) => t.apply_chat_template(chat, { tokenize: false, add_generation_prompt: true });
    expect(render(a)).toBe(render(b));
    expect(smol.files.tokenizerConfig).toMatchObject({ bos_token: '<|im_start|>', eos_token: '<|im_end|>', clean_up_tokenization_spaces: false });
  });

  it('byte-llama: no merges, specials, same ids', async () => {
    const j = json('byte-llama-12l/tokenizer.json');
    const c = json('byte-llama-12l/tokenizer_config.json');
    const { meta, files } = await viaGguf(j, c);
    expect(meta.get('tokenizer.ggml.pre')).toBe('gpt-2');
    expect(meta.get('tokenizer.ggml.bos_token_id')).toBe(256);
    expect(meta.get('tokenizer.ggml.padding_token_id')).toBe(259);
    expect((meta.get('tokenizer.ggml.token_type') as number[]).slice(255, 258)).toEqual([1, 3, 3]);
    expect(meta.get('tokenizer.chat_template')).toBe(c.chat_template);
    // llama.cpp cleans up spaces for "gpt-2" pre-tokenizers; compare the raw decodes.
    expectSameTokenizer(hfTok(files.tokenizerJson, files.tokenizerConfig), hfTok(j, c), 264, false);
  });

  it('builds the qwen2 and llama-bpe pre-tokenizers llama.cpp names', () => {
    for (const [pre, family] of [['qwen2', 'qwen2'], ['llama-bpe', 'llama3']] as const) {
      const meta = new Map(smol.meta);
      meta.set('tokenizer.ggml.pre', pre);
      const { tokenizerJson, tokenizerConfig } = tokenizerFilesFromGguf(meta);
      expect(tokenizerJson.pre_tokenizer).toEqual(bpePreTokenizer(family));
      expect((tokenizerJson.model as Json).ignore_merges).toBe(family === 'llama3');
      expect(tokenizerJson.normalizer).toEqual(family === 'qwen2' ? { type: 'NFC' } : null);
      expect(tokenizerConfig.add_bos_token).toBe(false); // the file's explicit flag wins over llama3's default
      const t = hfTok(tokenizerJson, tokenizerConfig);
      expect(t.encode('Hello world, this is it.')).toEqual(smolRef.encode('Hello world, this is it.'));
      expect(t.encode('1234567').map((id) => t.decode([id]))).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    }
  });
});

describe('GGUF tokenizer details', () => {
  const base = (extra: Record<string, GgufValue> = {}) => new Map<string, GgufValue>(Object.entries({
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>', '▁', 'a', 'b', '▁a', '▁ab', '<mask>'],
    'tokenizer.ggml.scores': [0, 0, 0, -5, -6, -7, -1, -2, 0],
    'tokenizer.ggml.token_type': [2, 3, 3, 1, 1, 1, 1, 1, 4],
    ...extra,
  }));

  it('derives merges from scores like transformers generate_merges', () => {
    const merges = spmMergesFromScores(['a', 'b', 'c', 'ab', 'bc', 'abc', '<s>'], [0, 0, 0, -1, -2, -3, 0], [1, 1, 1, 1, 1, 1, 3]);
    expect(merges).toEqual([['a', 'b'], ['b', 'c'], ['ab', 'c'], ['a', 'bc']]);
  });

  it('honours add_bos/add_eos, user-defined tokens, the space prefix flag and the chat template', () => {
    const files = tokenizerFilesFromGguf(base({ 'tokenizer.ggml.add_eos_token': true, 'tokenizer.chat_template': 'T' }));
    const t = hfTok(files.tokenizerJson, files.tokenizerConfig);
    expect(t.encode('ab')).toEqual([1, 7, 2]);
    // As in HF's legacy Llama tokenizer.json, every text segment between added tokens gets the ▁ prefix.
    expect(t.encode('a<mask>b')).toEqual([1, 6, 8, 3, 5, 2]);
    expect(files.tokenizerConfig.chat_template).toBe('T');
    const added = files.tokenizerJson.added_tokens as Json[];
    expect(added.map((x) => [x.content, x.special])).toEqual([['<unk>', true], ['<s>', true], ['</s>', true], ['<mask>', false]]);
    const noPrefix = tokenizerFilesFromGguf(base({ 'tokenizer.ggml.add_space_prefix': false, 'tokenizer.ggml.add_bos_token': false }));
    expect(hfTok(noPrefix.tokenizerJson, noPrefix.tokenizerConfig).encode('ab a')).toEqual([4, 5, 6]);
  });

  it('writes SentencePiece metadata from legacy (Prepend) and Metaspace tokenizer.json layouts alike', () => {
    const legacy = json('stories260k/tokenizer.json');
    const metaspace = { ...legacy, normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false } };
    const cfg = json('stories260k/tokenizer_config.json');
    const [a, b] = [tokenizerMetadataFromHf(legacy, cfg), tokenizerMetadataFromHf(metaspace, cfg)];
    expect(b).toEqual(a);
    expect(a.find(([k]) => k === 'tokenizer.ggml.add_space_prefix')![1].value).toBe(true);
  });

  it('names what it cannot convert', () => {
    expect(() => tokenizerFilesFromGguf(base({ 'tokenizer.ggml.model': 'bert' }))).toThrow(UnsupportedArchitectureError);
    expect(() => tokenizerFilesFromGguf(base({ 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'chatglm-bpe' }))).toThrow(/"chatglm-bpe" is not supported/);
    expect(() => tokenizerFilesFromGguf(base({ 'tokenizer.ggml.tokens': 5 }))).toThrow(ModelFormatError);
    expect(() => tokenizerFilesFromGguf(base({ 'tokenizer.ggml.tokens': ['a', 'a'] }))).toThrow(/appears twice/);
    expect(() => tokenizerFilesFromGguf(base({ 'tokenizer.ggml.scores': [1] }))).toThrow(/a number for each/);
    expect(() => tokenizerMetadataFromHf({ model: { type: 'Unigram' } }, {})).toThrow(ModelFormatError);
  });
});
