/**
 * GGUF repos in the model manager: file names to quantization labels, `org/name/file.gguf` references, the
 * repo listing through the hub tree API (sizes, shards and non-GGUF files left out), and the magic check of a
 * picked .gguf file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../../scripts/hub-server';
import { ModelFormatError } from '../../src/errors';
import { checkGgufFile, ggufFilesOf, ggufQuantOfName, listHubFiles } from '../../src/ui/gguf-files';
import { parseModelRef } from '../../src/ui/model-validate';

describe('GGUF file names and references', () => {
  it('reads the quantization the way hub repos name files', () => {
    expect(ggufQuantOfName('SmolLM2-360M-Instruct-Q4_K_M.gguf')).toBe('Q4_K_M');
    expect(ggufQuantOfName('qwen2.5-0.5b-instruct-q8_0.gguf')).toBe('Q8_0');
    expect(ggufQuantOfName('model-f16.gguf')).toBe('F16');
    expect(ggufQuantOfName('Llama-3.2-1B-Instruct-IQ4_XS.gguf')).toBe('IQ4_XS');
    expect(ggufQuantOfName('stories260k-f32-v3.gguf')).toBe('F32');
    expect(ggufQuantOfName('model.gguf')).toBe('GGUF');
  });

  it('parses repo, repo/file.gguf, repo:file.gguf and hub URLs of a file', () => {
    expect(parseModelRef('Qwen/Qwen2.5-0.5B-Instruct-GGUF')).toEqual({ repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF' });
    expect(parseModelRef('bartowski/SmolLM2-360M-Instruct-GGUF/SmolLM2-360M-Instruct-Q8_0.gguf')).toEqual({ repo: 'bartowski/SmolLM2-360M-Instruct-GGUF', file: 'SmolLM2-360M-Instruct-Q8_0.gguf' });
    expect(parseModelRef('a/b:c.gguf')).toEqual({ repo: 'a/b', file: 'c.gguf' });
    expect(parseModelRef('https://huggingface.co/a/b/blob/main/c-Q4_0.gguf')).toEqual({ repo: 'a/b', file: 'c-Q4_0.gguf' });
    expect(parseModelRef('https://huggingface.co/a/b/resolve/main/c.gguf')).toEqual({ repo: 'a/b', file: 'c.gguf' });
    for (const bad of ['a/b/c', 'a/../x.gguf', '../b/c.gguf']) expect(() => parseModelRef(bad), bad).toThrow(ModelFormatError);
  });
});

describe('listHubFiles', () => {
  let hub: HubServer;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-repo-'));
    fs.writeFileSync(path.join(dir, 'm-Q8_0.gguf'), new Uint8Array(300));
    fs.writeFileSync(path.join(dir, 'm-Q4_K_M.gguf'), new Uint8Array(100));
    fs.writeFileSync(path.join(dir, 'big-Q4_0-00001-of-00002.gguf'), new Uint8Array(10));
    fs.writeFileSync(path.join(dir, 'README.md'), 'readme');
    hub = await startHubServer({ repos: { 'local/gguf': dir } });
  });
  afterAll(async () => {
    await hub?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists a repo\'s single-file GGUFs with sizes, smallest first', async () => {
    const files = await listHubFiles(hub.baseUrl, 'local/gguf');
    expect(files?.map((f) => f.path).sort()).toEqual(['README.md', 'big-Q4_0-00001-of-00002.gguf', 'm-Q4_K_M.gguf', 'm-Q8_0.gguf']);
    expect(ggufFilesOf(files ?? [])).toEqual([{ path: 'm-Q4_K_M.gguf', size: 100 }, { path: 'm-Q8_0.gguf', size: 300 }]);
  });

  it('returns null when the server has no tree API or no such repo', async () => {
    expect(await listHubFiles(hub.baseUrl, 'local/none')).toBeNull();
    expect(await listHubFiles('http://127.0.0.1:9', 'local/gguf')).toBeNull();
  });
});

describe('checkGgufFile', () => {
  it('accepts the GGUF magic and names what is wrong otherwise', async () => {
    const good = new File([new Uint8Array([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0])], 'x.gguf');
    expect(await checkGgufFile(good)).toBe(good);
    await expect(checkGgufFile(new File(['GGML....'], 'x.gguf'))).rejects.toThrow(/does not start with the GGUF magic/);
    await expect(checkGgufFile(new File(['GGUF'], 'x.bin'))).rejects.toThrow(/not a \.gguf file/);
  });
});
