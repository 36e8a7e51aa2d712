import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRepos, sharedModelsDir, startHubServer, type HubServer } from '../scripts/hub-server';

/** Sends a request with the path exactly as given (fetch would normalize `..`). */
function rawGet(base: string, rawPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    http
      .get({ hostname, port, path: rawPath }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

describe('hub-server', () => {
  let hub: HubServer;
  let dir: string;
  let secretDir: string;
  const bin = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) & 255));

  beforeAll(async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-test-'));
    dir = path.join(tmp, 'repo');
    secretDir = path.join(tmp, 'secret');
    fs.mkdirSync(path.join(dir, 'onnx'), { recursive: true });
    fs.mkdirSync(secretDir);
    fs.writeFileSync(path.join(dir, 'model.bin'), bin);
    fs.writeFileSync(path.join(dir, 'config.json'), '{"a":1}');
    fs.writeFileSync(path.join(dir, 'onnx', 'nested.bin'), 'nested');
    fs.writeFileSync(path.join(secretDir, 'secret.txt'), 'secret');
    fs.symlinkSync(path.join(secretDir, 'secret.txt'), path.join(dir, 'link.txt'));
    hub = await startHubServer({ repos: { 'test/repo': dir } });
  });
  afterAll(async () => {
    await hub?.close();
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  const url = (file: string, rev = 'main') => `${hub.baseUrl}/test/repo/resolve/${rev}/${file}`;

  it('binds to 127.0.0.1 on a random port', () => {
    expect(hub.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves files byte-exact with length, type and CORS headers', async () => {
    const res = await fetch(url('model.bin'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(bin.length));
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toContain('Content-Range');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await res.arrayBuffer()).equals(bin)).toBe(true);

    const json = await fetch(url('config.json', 'some-revision'));
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(await json.json()).toEqual({ a: 1 });
    expect(await (await fetch(url('onnx/nested.bin'))).text()).toBe('nested');
  });

  it('answers HEAD with headers and no body', async () => {
    const res = await fetch(url('model.bin'), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(bin.length));
    expect(res.headers.get('etag')).toBeTruthy();
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it('serves single ranges with 206 and 416 when unsatisfiable', async () => {
    const mid = await fetch(url('model.bin'), { headers: { Range: 'bytes=100-199' } });
    expect(mid.status).toBe(206);
    expect(mid.headers.get('content-range')).toBe(`bytes 100-199/${bin.length}`);
    expect(Buffer.from(await mid.arrayBuffer()).equals(bin.subarray(100, 200))).toBe(true);

    const open = await fetch(url('model.bin'), { headers: { Range: 'bytes=69990-' } });
    expect(open.status).toBe(206);
    expect(Buffer.from(await open.arrayBuffer()).equals(bin.subarray(69_990))).toBe(true);

    const suffix = await fetch(url('model.bin'), { headers: { Range: 'bytes=-5' } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(bin.subarray(-5))).toBe(true);

    const bad = await fetch(url('model.bin'), { headers: { Range: `bytes=${bin.length}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${bin.length}`);
  });

  it('lists a repo\'s top-level files with sizes like the hub tree API, never a symlink out of the repo', async () => {
    const res = await fetch(`${hub.baseUrl}/api/models/test/repo/tree/main`);
    expect(res.status).toBe(200);
    const entries = (await res.json()) as Array<{ type: string; path: string; size: number }>;
    expect(entries.map((e) => e.path)).toEqual(['config.json', 'model.bin']);
    expect(entries.find((e) => e.path === 'model.bin')).toMatchObject({ type: 'file', size: bin.length });
    expect((await fetch(`${hub.baseUrl}/api/models/test/nothing/tree/main`)).status).toBe(404);
  });

  it('returns 404 JSON for unknown repos and files', async () => {
    const noRepo = await fetch(`${hub.baseUrl}/test/nope/resolve/main/model.bin`);
    expect(noRepo.status).toBe(404);
    expect(noRepo.headers.get('access-control-allow-origin')).toBe('*');
    expect((await noRepo.json()).error).toMatch(/not found/i);
    const noFile = await fetch(url('missing.bin'));
    expect(noFile.status).toBe(404);
    expect((await noFile.json()).error).toBeTruthy();
    expect((await fetch(url('onnx'))).status).toBe(404); // directories are not files
  });

  it('rejects path traversal and symlinks out of the repo', async () => {
    const base = '/test/repo/resolve/main';
    for (const p of [
      `${base}/../../../../secret/secret.txt`,
      `${base}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret/secret.txt`,
      `${base}/..%2f..%2f..%2f..%2fsecret%2fsecret.txt`,
      `${base}/onnx/..%5c..%5cmodel.bin`,
      `${base}/link.txt`,
    ]) {
      expect([400, 404], p).toContain(await rawGet(hub.baseUrl, p));
    }
  });

  it('answers CORS preflight', async () => {
    const res = await fetch(url('model.bin'), {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'range' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toContain('range');
  });

  it('setRepo adds repos at runtime', async () => {
    hub.setRepo('other/repo', dir);
    const res = await fetch(`${hub.baseUrl}/other/repo/resolve/main/config.json`);
    expect(res.status).toBe(200);
  });

  it('maps shared model folders to local/<name>', () => {
    const repos = defaultRepos();
    for (const [id, d] of Object.entries(repos)) {
      expect(id).toBe(`local/${path.basename(d)}`);
      expect(path.dirname(d)).toBe(sharedModelsDir());
    }
  });
});
