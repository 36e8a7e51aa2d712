/**
 * generation_config.json: parsing (transformers' do_sample semantics, eos lists, bad files), and the engine
 * applying a model's defaults to the GenerateParams fields a caller leaves undefined (Node + Dawn, stories260k
 * copies with their own generation_config.json on a test hub).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../scripts/hub-server';
import { ModelFileMissingError, ModelFormatError } from '../src/errors';
import { parseModelConfig } from '../src/model/config';
import { ENGINE_GENERATION_DEFAULTS, parseGenerationConfig, readGenerationConfig, withGenerationDefaults } from '../src/model/generation-config';
import type { ModelSource } from '../src/model/source';
import { copyModel, GOLDEN, hubSpec, nodeEngine, sharedModel } from './helpers/hub';

/** A source holding just these files as text. */
function textSource(files: Record<string, string>): ModelSource {
  return {
    label: 'test/model',
    text: async (f) => {
      if (!(f in files)) throw new ModelFileMissingError(`${f} is not part of test/model.`);
      return files[f];
    },
    stream: async () => {
      throw new Error('not used');
    },
    has: async (f) => f in files,
  };
}

describe('parseGenerationConfig', () => {
  it('without do_sample is greedy, as in transformers, even with temperature / top_p / top_k set', () => {
    const g = parseGenerationConfig({ temperature: 0.7, top_p: 0.9, top_k: 20, bos_token_id: 1, eos_token_id: 2 });
    expect(g.defaults).toEqual({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, source: 'generation_config.json' });
    expect(parseGenerationConfig({ do_sample: false, temperature: 0.7 }).defaults.temperature).toBe(0);
    expect(g.bosTokenId).toBe(1);
    expect(g.eosTokenIds).toEqual([2]);
  });

  it('do_sample true takes the file values, and transformers defaults (1.0, 1.0, top_k 50) for absent or null ones', () => {
    expect(parseGenerationConfig({ do_sample: true, temperature: 0.6, top_p: 0.9, top_k: 20, repetition_penalty: 1.1, max_new_tokens: 64 }).defaults).toEqual({
      temperature: 0.6,
      topP: 0.9,
      topK: 20,
      repetitionPenalty: 1.1,
      maxNewTokens: 64,
      source: 'generation_config.json',
    });
    expect(parseGenerationConfig({ do_sample: true, temperature: null, top_p: null }).defaults).toEqual({ temperature: 1, topP: 1, topK: 50, repetitionPenalty: 1, source: 'generation_config.json' });
    expect(parseGenerationConfig({ do_sample: true, top_k: 0 }).defaults.topK).toBe(0);
    // transformers refuses temperature 0 with sampling; here it reads as greedy.
    expect(parseGenerationConfig({ do_sample: true, temperature: 0, top_k: 5 }).defaults).toMatchObject({ temperature: 0, topK: 0, topP: 1 });
  });

  it('keeps the repetition penalty for greedy decoding, ignores max_length and unknown fields', () => {
    const d = parseGenerationConfig({ repetition_penalty: 1.3, max_length: 20, num_beams: 1, pad_token_id: 0, transformers_version: '4.45.0' }).defaults;
    expect(d).toEqual({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1.3, source: 'generation_config.json' });
  });

  it('reads eos_token_id as a number or a list (duplicates dropped), absent or null as none', () => {
    expect(parseGenerationConfig({ eos_token_id: [128001, 128008, 128009, 128001] }).eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(parseGenerationConfig({ eos_token_id: 7 }).eosTokenIds).toEqual([7]);
    expect(parseGenerationConfig({ eos_token_id: null }).eosTokenIds).toEqual([]);
    expect(parseGenerationConfig({}).eosTokenIds).toEqual([]);
    expect(parseGenerationConfig({}).bosTokenId).toBeNull();
  });

  it('refuses wrong-typed or out-of-range fields with a ModelFormatError naming the file and the field', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ do_sample: 'true' }, /"do_sample"/],
      [{ temperature: '0.7' }, /"temperature" should be a number ≥ 0, got "0.7"/],
      [{ temperature: -1 }, /"temperature"/],
      [{ top_p: 1.5 }, /"top_p"/],
      [{ top_p: 0 }, /"top_p"/],
      [{ top_k: 2.5 }, /"top_k"/],
      [{ repetition_penalty: 0 }, /"repetition_penalty"/],
      [{ max_new_tokens: 0 }, /"max_new_tokens"/],
      [{ eos_token_id: [2, '3'] }, /"eos_token_id"/],
      [{ eos_token_id: -1 }, /"eos_token_id"/],
      [{ bos_token_id: 1.5 }, /"bos_token_id"/],
    ];
    for (const [raw, message] of bad) {
      expect(() => parseGenerationConfig(raw, 'generation_config.json of x'), JSON.stringify(raw)).toThrow(ModelFormatError);
      expect(() => parseGenerationConfig(raw, 'generation_config.json of x'), JSON.stringify(raw)).toThrow(message);
      expect(() => parseGenerationConfig(raw, 'generation_config.json of x')).toThrow(/^generation_config\.json of x field/);
    }
    for (const raw of [null, [], 'greedy', 3]) expect(() => parseGenerationConfig(raw)).toThrow(/generation_config\.json should hold a JSON object/);
  });

  it('config.json eos_token_id lists are checked the same way', () => {
    const cfg = JSON.parse(fs.readFileSync(path.join(sharedModel('stories260k'), 'config.json'), 'utf8'));
    expect(parseModelConfig({ ...cfg, eos_token_id: [2, 5, 2] }).eosTokenIds).toEqual([2, 5]);
    expect(() => parseModelConfig({ ...cfg, eos_token_id: ['2'] })).toThrow(/config\.json field "eos_token_id"/);
  });
});

describe('readGenerationConfig', () => {
  it('a missing file is no defaults; bad JSON is a ModelFormatError naming the file and the model', async () => {
    expect(await readGenerationConfig(textSource({}))).toBeNull();
    await expect(readGenerationConfig(textSource({ 'generation_config.json': '{ "do_sample": tru' }))).rejects.toThrow(ModelFormatError);
    await expect(readGenerationConfig(textSource({ 'generation_config.json': '{ "do_sample": tru' }))).rejects.toThrow(/generation_config\.json of test\/model is not valid JSON/);
    const g = await readGenerationConfig(textSource({ 'generation_config.json': '{"do_sample": true, "top_k": 8}' }));
    expect(g?.defaults).toMatchObject({ temperature: 1, topK: 8 });
  });
});

describe('withGenerationDefaults', () => {
  const model = { temperature: 0.6, topP: 0.9, topK: 20, repetitionPenalty: 1.1, maxNewTokens: 64, source: 'generation_config.json' as const };
  it('fills only the undefined sampling fields; explicit values (0 and 1 included) win', () => {
    expect(withGenerationDefaults({ seed: 3 }, model)).toEqual({ seed: 3, temperature: 0.6, topP: 0.9, topK: 20, repetitionPenalty: 1.1, maxNewTokens: 64 });
    expect(withGenerationDefaults({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, maxNewTokens: 5 }, model)).toEqual({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, maxNewTokens: 5 });
    expect(withGenerationDefaults({ temperature: 1.2 }, model)).toMatchObject({ temperature: 1.2, topP: 0.9, topK: 20 });
  });
  it('the engine defaults leave maxNewTokens to the sampler (256)', () => {
    expect(withGenerationDefaults({}, ENGINE_GENERATION_DEFAULTS)).toEqual({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1 });
  });
});

describe('the engine applies a model\'s generation_config.json (stories260k, f32)', () => {
  const g = GOLDEN.onceUponATime;
  const engine = nodeEngine();
  let hub: HubServer;
  const dirs: string[] = [];
  /** Serve a stories260k copy as `local/<name>` with this generation_config.json (null: none). */
  const repo = (name: string, generationConfig: string | null): string => {
    const dir = copyModel('stories260k');
    dirs.push(dir);
    const file = path.join(dir, 'generation_config.json');
    if (generationConfig === null) fs.rmSync(file);
    else fs.writeFileSync(file, generationConfig);
    hub.setRepo(`local/${name}`, dir);
    return `local/${name}`;
  };
  const load = (r: string) => engine.load(hubSpec(hub, r), { weightDtype: 'f32', kvDtype: 'f32' });
  beforeAll(async () => {
    hub = await startHubServer({ repos: {} });
  });
  afterAll(async () => {
    await engine.unload();
    await hub?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('do_sample true, temperature 0.8, top_k 5: undefined params sample exactly as the explicit ones, not greedily; explicit params override', async () => {
    const info = await load(repo('sampled', JSON.stringify({ bos_token_id: 1, eos_token_id: 2, do_sample: true, temperature: 0.8, top_k: 5, max_new_tokens: 24 })));
    expect(info.generationDefaults).toEqual({ temperature: 0.8, topP: 1, topK: 5, repetitionPenalty: 1, maxNewTokens: 24, source: 'generation_config.json' });
    const byDefault = await engine.generate(g.prompt, { seed: 7, stopAtEos: false });
    const explicit = await engine.generate(g.prompt, { temperature: 0.8, topK: 5, seed: 7, maxNewTokens: 24, stopAtEos: false });
    expect(byDefault.tokenIds).toHaveLength(24); // the file's max_new_tokens
    expect(byDefault.tokenIds).toEqual(explicit.tokenIds);
    expect(byDefault.tokenIds).not.toEqual(g.ids.slice(0, 24));
    // Another seed samples differently: the defaults really sample.
    expect((await engine.generate(g.prompt, { seed: 8, stopAtEos: false })).tokenIds).not.toEqual(byDefault.tokenIds);
    // Explicit values win over the file: greedy and a shorter reply.
    const greedy = await engine.generate(g.prompt, { temperature: 0, maxNewTokens: 30 });
    expect(greedy.tokenIds).toEqual(g.ids.slice(0, 30));
    // topK 1 overrides the file's top_k 5: greedy ids at temperature 0.8.
    expect((await engine.generate(g.prompt, { topK: 1, seed: 7, maxNewTokens: 30 })).tokenIds).toEqual(g.ids.slice(0, 30));
  });

  it('temperature and top_k without do_sample stay greedy (transformers semantics)', async () => {
    const info = await load(repo('no-do-sample', JSON.stringify({ bos_token_id: 1, eos_token_id: 2, temperature: 0.8, top_k: 5 })));
    expect(info.generationDefaults).toMatchObject({ temperature: 0, source: 'generation_config.json' });
    expect((await engine.generate(g.prompt, { maxNewTokens: 30, seed: 7 })).tokenIds).toEqual(g.ids.slice(0, 30));
  });

  it('an eos_token_id list stops generation at any listed id', async () => {
    // Greedy output starts 432, 383, 286: listing 286 ends the reply after two tokens.
    expect(g.ids.slice(0, 3)).toEqual([432, 383, 286]);
    const info = await load(repo('eos-list', JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 286] })));
    expect(info.eosTokenIds).toEqual(expect.arrayContaining([2, 286]));
    const result = await engine.generate(g.prompt, { maxNewTokens: 30 });
    expect(result.finishReason).toBe('eos');
    expect(result.tokenIds).toEqual([432, 383]);
    // stopAtEos false still runs through it.
    expect((await engine.generate(g.prompt, { maxNewTokens: 30, stopAtEos: false })).tokenIds).toEqual(g.ids.slice(0, 30));
  });

  it('no generation_config.json: the engine defaults (greedy, 256), config.json and tokenizer EOS', async () => {
    const info = await load(repo('none', null));
    expect(info.generationDefaults).toEqual(ENGINE_GENERATION_DEFAULTS);
    expect(info.eosTokenIds).toEqual([2]);
    expect((await engine.generate(g.prompt, { maxNewTokens: 30 })).tokenIds).toEqual(g.ids.slice(0, 30));
  });

  it('a malformed or wrong-typed generation_config.json fails the load with a ModelFormatError naming it', async () => {
    await expect(load(repo('bad-json', '{ "do_sample": tru'))).rejects.toThrow(/generation_config\.json of local\/bad-json at .* is not valid JSON/);
    await expect(load(repo('bad-field', '{ "do_sample": true, "temperature": "0.7" }'))).rejects.toThrow(ModelFormatError);
    await expect(load(repo('bad-field-2', '{ "do_sample": true, "temperature": "0.7" }'))).rejects.toThrow(/generation_config\.json of local\/bad-field-2 .*field "temperature"/);
  });

  it('a GGUF file: engine defaults; its eos token in the EOS set', async () => {
    hub.setRepo('local/stories260k', sharedModel('stories260k'));
    const info = await engine.load({ ...hubSpec(hub, 'local/stories260k'), file: 'stories260k-f32-v3.gguf' }, { weightDtype: 'f32', kvDtype: 'f32' });
    expect(info.weightFormat).toBe('gguf');
    expect(info.generationDefaults).toEqual(ENGINE_GENERATION_DEFAULTS);
    expect(info.eosTokenIds).toContain(2);
  });
});
