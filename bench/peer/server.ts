/**
 * The wllama page's static server for the peer benchmark (bench/peer.ts): bench/peer/, wllama's ESM build and
 * the models, cross-origin isolated (COOP/COEP) as wllama's threads need.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.gguf': 'application/octet-stream',
  '.map': 'application/json',
};

/** The wllama page's origin: bench/peer/, wllama's esm/ at /wllama/, the models at /models/; cross-origin isolated. */
export function startPeerServer(modelsDir: string): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  const mounts: Array<[string, string]> = [
    ['/wllama/', path.join(ROOT, 'node_modules/@wllama/wllama/esm')],
    ['/models/', modelsDir],
    ['/', path.join(ROOT, 'bench/peer')],
  ];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const pathname = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const mount = mounts.find(([prefix]) => pathname.startsWith(prefix));
    const headers: Record<string, string> = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    const file = mount ? path.resolve(mount[1], pathname.slice(mount[0].length)) : '';
    if (!mount || !file.startsWith(mount[1] + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    const size = fs.statSync(file).size;
    headers['Content-Type'] = TYPES[path.extname(file)] ?? 'application/octet-stream';
    headers['Content-Length'] = String(size);
    res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        baseUrl: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}

