import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFileMissingError, ModelFormatError } from '../src/errors';
import { IncrementalDecoder, loadTokenizer, renderPlainChat, type ChatTokenizer } from '../src/model/tokenizer';
import { DirSource } from './helpers/dir-source';

const models = '/work/shared/models';
const source = (name: string) => new DirSource(path.join(models, name));

const goldenIds = [
  432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265,
  282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335,
  312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13, 438, 310,
];
const goldenText =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, ' +
  'red ball. She wanted to play with it, but it was too high.\nLily';

/** Push ids one by one; return each push's text and the flushed remainder. */
function stream(tok: ChatTokenizer, ids: number[], promptIds?: number[]) {
  const d = new IncrementalDecoder(tok, promptIds);
  const pieces = ids.map((id) => d.push(id));
  return { pieces, text: pieces.join('') + d.flush() };
}

const tmpDirs: string[] = [];
function tmpModel(files: Record<string, string>): DirSource {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-tok-'));
  tmpDirs.push(dir);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return new DirSource(dir);
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('DirSource', () => {
  it('reads text, streams bytes and reports missing files', async () => {
    const s = source('stories260k');
    expect(await s.has('config.json')).toBe(true);
    expect(await s.has('nope.json')).toBe(false);
    const { size, body } = await s.stream('config.json');
    const bytes = new Uint8Array(await new Response(body).arrayBuffer());
    expect(bytes.length).toBe(size);
    expect(new TextDecoder().decode(bytes)).toBe(await s.text('config.json'));
    await expect(s.text('nope.json')).rejects.toBeInstanceOf(ModelFileMissingError);
    await expect(s.stream('nope.json')).rejects.toBeInstanceOf(ModelFileMissingError);
  });
});

describe('stories260k (SentencePiece BPE with byte fallback)', async () => {
  const tok = await loadTokenizer(source('stories260k'), [2]);

  it('encodes with BOS as in the golden test', () => {
    expect(tok.encodeText('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tok.encodeText('Tom and Sue went to the')).toEqual([1, 274, 287, 269, 301, 425, 411, 263, 377, 267, 265]);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
  });

  it('decodes the golden continuation, whole and streamed', () => {
    expect(tok.decode(goldenIds)).toBe(goldenText);
    const { pieces, text } = stream(tok, goldenIds);
    expect(text).toBe(goldenText);
    expect(pieces.filter((p) => p === '').length).toBe(0);
  });

  it('keeps the leading space of the first token when given prompt context', () => {
    const prompt = tok.encodeText('Once upon a time');
    const ids = tok.encodeText('Once upon a time there was').slice(prompt.length);
    expect(stream(tok, ids).text).toBe('there was');
    expect(stream(tok, ids, prompt).text).toBe(' there was');
  });

  it('has no chat template and falls back to the plain format', () => {
    expect(tok.hasChatTemplate).toBe(false);
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Tell a story.' },
    ];
    const plain = 'System: Be brief.\nUser: Tell a story.\nAssistant:';
    expect(renderPlainChat(messages)).toBe(plain);
    expect(tok.renderChat(messages)).toBe(plain);
    const ids = tok.encodeChat(messages);
    expect(ids[0]).toBe(1);
    expect(ids).toEqual(tok.encodeText(plain));
  });
});

describe('byte-llama-12l (byte-level, ChatML markers)', async () => {
  const tok = await loadTokenizer(source('byte-llama-12l'), [256]);

  it('renders ChatML and encodes it with the marker ids', () => {
    expect(tok.hasChatTemplate).toBe(true);
    const messages = [{ role: 'user' as const, content: 'Café?' }];
    const expected = '<|im_start|>user\nCafé?<|im_end|>\n<|im_start|>assistant\n';
    expect(tok.renderChat(messages)).toBe(expected);
    const ids = tok.encodeChat(messages);
    expect(ids[0]).toBe(257);
    expect(ids).toContain(258);
    expect(ids.filter((i) => i < 256)).toEqual([...new TextEncoder().encode('user\nCafé?\nassistant\n')]);
    expect(tok.decode(ids)).toBe(expected);
  });

  it('adds no BOS to plain text (add_bos_token false) and reports <|endoftext|> as EOS', () => {
    expect(tok.encodeText('Hi')).toEqual([72, 105]);
    expect(tok.eosTokenIds).toEqual([256]);
  });

  it('streams multi-byte characters only once complete', () => {
    const text = 'aé😀b';
    const ids = tok.encodeText(text);
    expect(ids).toEqual([...new TextEncoder().encode(text)]);
    const { pieces, text: streamed } = stream(tok, ids);
    expect(pieces).toEqual(['a', '', 'é', '', '', '', '😀', 'b']);
    expect(streamed).toBe(tok.decode(ids));
    expect(streamed).toBe(text);
  });

  it('releases an incomplete sequence at the end through flush()', () => {
    const d = new IncrementalDecoder(tok);
    expect(d.push(0x68)).toBe('h');
    expect(d.push(0xe2)).toBe('');
    expect(d.push(0x82)).toBe('');
    expect(d.flush()).toBe('\uFFFD');
    expect(d.flush()).toBe('');
  });
});

describe('smollm2-135m-shape (ChatML config written by the test)', async () => {
  const smolTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}" +
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const src = tmpModel({
    'tokenizer.json': fs.readFileSync(path.join(models, 'smollm2-135m-shape/tokenizer.json'), 'utf8'),
    'tokenizer_config.json': JSON.stringify({
      bos_token: '<|im_start|>',
      eos_token: '<|im_end|>',
      pad_token: '<|im_end|>',
      unk_token: '<|endoftext|>',
      add_prefix_space: false,
      clean_up_tokenization_spaces: false,
      model_max_length: 8192,
      tokenizer_class: 'GPT2Tokenizer',
      chat_template: smolTemplate,
    }),
  });
  const tok = await loadTokenizer(src, [2]);

  it('renders the SmolLM2 template and round-trips through decode', () => {
    expect(tok.hasChatTemplate).toBe(true);
    const ids = tok.encodeChat([{ role: 'user', content: 'What is 2+2? Ça va?' }]);
    const expected =
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
      '<|im_start|>user\nWhat is 2+2? Ça va?<|im_end|>\n<|im_start|>assistant\n';
    expect(tok.decode(ids)).toBe(expected);
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 1).length).toBe(3);
    expect(ids.filter((i) => i === 2).length).toBe(2);
    expect(stream(tok, ids).text).toBe(expected);
  });

  it('uses an explicit system message instead of the default one', () => {
    const text = tok.renderChat([
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: 'Hi' },
    ]);
    expect(text).toBe('<|im_start|>system\nAnswer in French.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('takes EOS from tokenizer_config plus extra ids, deduplicated', async () => {
    expect(tok.eosTokenIds).toEqual([2]);
    expect((await loadTokenizer(src, [2, 0])).eosTokenIds).toEqual([2, 0]);
  });

  it('adds no BOS to plain text: no post-processor and no add_bos_token', () => {
    const ids = tok.encodeText('Hello world');
    expect(ids).not.toContain(1);
    expect(tok.decode(ids)).toBe('Hello world');
  });

  it('works without tokenizer_config.json: no template, no EOS of its own', async () => {
    const bare = await loadTokenizer(source('smollm2-135m-shape'), [2]);
    expect(bare.hasChatTemplate).toBe(false);
    expect(bare.eosTokenIds).toEqual([2]);
    expect(bare.decode(bare.encodeText("Hello, world! It's 2024."))).toBe("Hello, world! It's 2024.");
  });

  it('reads chat_template.jinja when the config has no template', async () => {
    const s = tmpModel({
      'tokenizer.json': fs.readFileSync(path.join(models, 'byte-llama-12l/tokenizer.json'), 'utf8'),
      'chat_template.jinja': '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}>',
    });
    const t = await loadTokenizer(s);
    expect(t.hasChatTemplate).toBe(true);
    expect(t.renderChat([{ role: 'user', content: 'x' }])).toBe('[user]x>');
  });
});

describe('loadTokenizer errors', () => {
  it('missing tokenizer.json is ModelFileMissingError from the source', async () => {
    const s = tmpModel({ 'config.json': '{}' });
    await expect(loadTokenizer(s)).rejects.toBeInstanceOf(ModelFileMissingError);
  });

  it('corrupt tokenizer.json is ModelFormatError naming the file', async () => {
    const s = tmpModel({ 'tokenizer.json': '{"version": "1.0", "model": ' });
    const err = await loadTokenizer(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain('tokenizer.json');
  });

  it('valid JSON that is not a tokenizer is ModelFormatError', async () => {
    for (const text of ['[1, 2]', '{"model": {"type": "Nope"}}']) {
      const err = await loadTokenizer(tmpModel({ 'tokenizer.json': text })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message).toContain('tokenizer.json');
    }
  });

  it('corrupt tokenizer_config.json is ModelFormatError naming that file', async () => {
    const s = tmpModel({
      'tokenizer.json': fs.readFileSync(path.join(models, 'stories260k/tokenizer.json'), 'utf8'),
      'tokenizer_config.json': '{bad',
    });
    const err = await loadTokenizer(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain('tokenizer_config.json');
  });
});
