/**
 * Validation before anything large moves: hub ids, a hub config fetched and parsed (supported or not, gated,
 * missing), and picked folders (required files, supported config, unrelated files left out).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../../scripts/hub-server';
import { ModelFileMissingError, ModelFormatError, UnsupportedArchitectureError } from '../../src/errors';
import { checkModelFolder, checkRepoId, fetchHubConfig } from '../../src/ui/model-validate';
import { sharedModel } from '../helpers/hub';

/** A File as a folder pick gives it (webkitRelativePath set). */
function picked(folder: string, name: string, body: string | Uint8Array): File {
  const f = new File([typeof body === 'string' ? body : new Uint8Array(body)], path.basename(name));
  Object.defineProperty(f, 'webkitRelativePath', { value: `${folder}/${name}` });
  return f;
}

describe('checkRepoId', () => {
  it('accepts org/name ids and hub URLs, rejects everything else with the expected form', () => {
    expect(checkRepoId(' HuggingFaceTB/SmolLM2-135M-Instruct ')).toBe('HuggingFaceTB/SmolLM2-135M-Instruct');
    expect(checkRepoId('https://huggingface.co/Qwen/Qwen3-0.6B/')).toBe('Qwen/Qwen3-0.6B');
    for (const bad of ['', 'gpt2', 'a/b/c', 'not a model id!', '../etc/passwd', 'org/..', 'org/na me']) {
      expect(() => checkRepoId(bad), bad).toThrow(ModelFormatError);
    }
    expect(() => checkRepoId('x')).toThrow(/Use the hub's org\/name form/);
  });
});

describe('fetchHubConfig', () => {
  let hub: HubServer;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'validate-'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2' }));
    hub = await startHubServer({ repos: { 'local/stories260k': sharedModel('stories260k'), 'openai-community/gpt2': dir } });
  });
  afterAll(async () => {
    await hub?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('parses a supported config', async () => {
    const config = await fetchHubConfig(hub.baseUrl, 'local/stories260k');
    expect(config).toMatchObject({ architecture: 'llama', numLayers: 5, numKvHeads: 4 });
  });

  it('names an unsupported architecture, a missing repo, a gated repo and an unreachable hub', async () => {
    await expect(fetchHubConfig(hub.baseUrl, 'openai-community/gpt2')).rejects.toThrow(UnsupportedArchitectureError);
    await expect(fetchHubConfig(hub.baseUrl, 'local/nope')).rejects.toThrow(/There is no model "local\/nope" .* HTTP 404/);
    const gated = (async () => new Response('{}', { status: 401 })) as typeof fetch;
    await expect(fetchHubConfig(hub.baseUrl, 'meta-llama/Llama-3.2-1B-Instruct', undefined, gated)).rejects.toThrow(/gated or private .* access token/);
    await expect(fetchHubConfig('http://127.0.0.1:1', 'a/b')).rejects.toThrow(ModelFileMissingError);
  });

  it('sends the access token only when given, and only where the token policy allows it', async () => {
    const seen: Array<HeadersInit | undefined> = [];
    const spy = (async (_url: RequestInfo | URL, init?: RequestInit) => {
      seen.push(init?.headers);
      return new Response(fs.readFileSync(path.join(sharedModel('stories260k'), 'config.json')));
    }) as typeof fetch;
    await fetchHubConfig('https://huggingface.co', 'a/b', { token: 'hf_secret' }, spy);
    await fetchHubConfig('https://huggingface.co', 'a/b', undefined, spy);
    await fetchHubConfig('http://h', 'a/b', { token: 'hf_secret' }, spy);
    await fetchHubConfig('http://h', 'a/b', { token: 'hf_secret', policy: { allowedHosts: ['http://h'] } }, spy);
    expect(seen).toEqual([{ Authorization: 'Bearer hf_secret' }, {}, {}, { Authorization: 'Bearer hf_secret' }]);
  });
});

describe('checkModelFolder', () => {
  const stories = (name: string) => fs.readFileSync(path.join(sharedModel('stories260k'), name));

  it('keeps the model files of the folder itself and reads its config', async () => {
    const files = [
      picked('stories', 'config.json', stories('config.json')),
      picked('stories', 'tokenizer.json', stories('tokenizer.json')),
      picked('stories', 'model.safetensors', 'x'),
      picked('stories', 'stories260k-f32-v3.gguf', 'gguf'),
      picked('stories', 'onnx/model.safetensors', 'nested'),
    ];
    const result = await checkModelFolder(files);
    expect(result.name).toBe('stories');
    expect(result.files.map((f) => f.webkitRelativePath)).toEqual(['stories/config.json', 'stories/tokenizer.json', 'stories/model.safetensors']);
    expect(result.config.architecture).toBe('llama');
  });

  it('says which files are missing, and rejects an unsupported config before anything is copied', async () => {
    await expect(checkModelFolder([picked('m', 'config.json', stories('config.json'))])).rejects.toThrow(/The folder "m" lacks tokenizer\.json, \*\.safetensors weights/);
    const gpt2 = [picked('g', 'config.json', '{"model_type":"gpt2"}'), picked('g', 'tokenizer.json', '{}'), picked('g', 'model.safetensors', 'x')];
    await expect(checkModelFolder(gpt2)).rejects.toThrow(UnsupportedArchitectureError);
    const broken = [picked('b', 'config.json', '{oops'), picked('b', 'tokenizer.json', '{}'), picked('b', 'model.safetensors', 'x')];
    await expect(checkModelFolder(broken)).rejects.toThrow(/config\.json of the folder "b" is not valid JSON/);
  });
});
