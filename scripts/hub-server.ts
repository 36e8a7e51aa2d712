/**
 * A dependency-free static server laid out like the Hugging Face hub, for tests and local runs:
 * `GET|HEAD <base>/<org>/<name>/resolve/<revision>/<file>` serves `<file>` from the directory
 * mapped to repo `<org>/<name>` (any revision name is accepted and ignored).
 * Supports single HTTP ranges (resumable downloads), CORS, ETag/If-None-Match/If-Range.
 * `GET <base>/` answers `{ repos: [...] }` (handy as a readiness probe); `GET <base>/api/models/<repo>/tree/<rev>`
 * lists a repo's files with their sizes, like the hub's tree API.
 *
 * CLI: `tsx scripts/hub-server.ts [--port N] [--host H] [--models DIR]` serves every subfolder
 * of DIR (default: sharedModelsDir()) as `local/<folder>` and prints the base URL.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Options for {@link startHubServer}. */
export interface HubServerOptions {
  /** Repo id (e.g. `local/stories260k`) → directory on disk. */
  repos: Record<string, string>;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** Called with every request before it is answered (tests check, e.g., which requests carried Authorization). */
  onRequest?: (req: { method: string; url: string; headers: http.IncomingHttpHeaders }) => void;
  /** Answer file requests (`…/resolve/…`) with a 302 to this base URL plus the same path, as the hub redirects to its CDN. */
  redirectTo?: string;
  /** Send file bodies at about this many bytes per second (a slow network, e.g. to cancel a load mid-download). */
  bytesPerSecond?: number;
}

/** A running hub server. */
export interface HubServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`. */
  baseUrl: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
  /** Adds or replaces the directory served for a repo id. */
  setRepo(repo: string, dir: string): void;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Absolute path of the shared models folder (`../shared/models` from the repo root; env KVTAB_MODELS_DIR overrides). */
export function sharedModelsDir(): string {
  return path.resolve(process.env.KVTAB_MODELS_DIR ?? path.join(REPO_ROOT, '..', 'shared', 'models'));
}

/** Maps `local/<name>` to each subfolder of `dir` (default {@link sharedModelsDir}); `{}` if `dir` is missing. */
export function defaultRepos(dir: string = sharedModelsDir()): Record<string, string> {
  const repos: Record<string, string> = {};
  if (!fs.existsSync(dir)) return repos;
  for (const name of fs.readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (!name.startsWith('.') && fs.statSync(full).isDirectory()) repos[`local/${name}`] = full;
  }
  return repos;
}

const CORS_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range, Accept-Ranges, ETag',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

type Range = { start: number; end: number } | 'unsatisfiable' | null;

/** Parses a single `bytes=` range; null means "ignore the header and send the whole file". */
function parseRange(header: string | undefined, size: number): Range {
  const m = header?.trim().match(/^bytes=(\d*)-(\d*)$/);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null; // syntactically invalid: ignore
  }
  return start >= size ? 'unsatisfiable' : { start, end };
}

/** Splits a raw request path into decoded segments; null if any segment is unsafe. */
function safeSegments(rawPath: string): string[] | null {
  const out: string[] = [];
  for (const raw of rawPath.split('/').slice(1)) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg === '' || seg === '.' || seg === '..' || /[/\\\0]/.test(seg)) return null;
    out.push(seg);
  }
  return out;
}

/** The real path of regular file `rel` inside repo folder `dir`, or null (missing, a folder, or a link out of it). */
function fileInRepo(dir: string, rel: string): string | null {
  try {
    const file = fs.realpathSync(path.join(dir, rel));
    return file.startsWith(fs.realpathSync(dir) + path.sep) && fs.statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** Starts a hub-like static server; see the module comment for the URL layout. */
export function startHubServer(opts: HubServerOptions): Promise<HubServer> {
  const repos = new Map(Object.entries(opts.repos).map(([id, dir]) => [id, path.resolve(dir)]));

  const sendJson = (res: http.ServerResponse, status: number, body: unknown, head = false) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...CORS_HEADERS,
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(head ? undefined : text);
  };

  /** Resolves a request path to a file inside a repo dir, or an error status and message. */
  const resolveFile = (rawPath: string): { file: string } | { status: number; error: string } => {
    const segs = safeSegments(rawPath);
    if (!segs) return { status: 400, error: 'Invalid path' };
    // `<org>/<name>/resolve/<rev>/<file...>` or (like the hub's legacy ids) `<name>/resolve/<rev>/<file...>`.
    const at = segs[2] === 'resolve' ? 2 : segs[1] === 'resolve' ? 1 : -1;
    if (at < 0 || segs.length < at + 3) return { status: 404, error: 'Not found' };
    const repo = segs.slice(0, at).join('/');
    const dir = repos.get(repo);
    if (!dir) return { status: 404, error: `Repository not found: ${repo}` };
    const rel = segs.slice(at + 2).join('/');
    const file = fileInRepo(dir, rel);
    return file ? { file } : { status: 404, error: `Entry not found: ${rel} in ${repo}` };
  };

  /**
   * `GET /api/models/<org>/<name>/tree/<revision>`: the repo's top-level files as the hub's tree API lists
   * them (`[{ type: 'file', path, size, oid }]`), so clients can offer a repo's GGUF files with their sizes.
   */
  const listTree = (rawPath: string): { entries: unknown[] } | { status: number; error: string } => {
    const segs = safeSegments(rawPath);
    const at = segs ? segs.indexOf('tree') : -1;
    if (!segs || at < 3 || segs.length !== at + 2) return { status: 404, error: 'Not found' };
    const repo = segs.slice(2, at).join('/');
    const dir = repos.get(repo);
    if (!dir) return { status: 404, error: `Repository not found: ${repo}` };
    const entries = fs
      .readdirSync(dir)
      .filter((name) => !name.startsWith('.'))
      .flatMap((name) => {
        const file = fileInRepo(dir, name); // the same rule as serving: no symlinks out of the repo
        if (!file) return [];
        const stat = fs.statSync(file);
        return [{ type: 'file', path: name, size: stat.size, oid: `${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}` }];
      })
      .sort((x, y) => x.path.localeCompare(y.path));
    return { entries };
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const method = req.method ?? 'GET';
    opts.onRequest?.({ method, url: req.url ?? '/', headers: req.headers });
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        ...CORS_HEADERS,
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? '*',
        'Access-Control-Max-Age': '86400',
        'Content-Length': 0,
      });
      return res.end();
    }
    const head = method === 'HEAD';
    if (method !== 'GET' && !head) return sendJson(res, 405, { error: 'Method not allowed' }, head);

    const rawPath = (req.url ?? '/').split(/[?#]/)[0];
    if (rawPath === '/') return sendJson(res, 200, { repos: [...repos.keys()] }, head);
    if (rawPath.startsWith('/api/models/')) {
      const tree = listTree(rawPath);
      return 'error' in tree ? sendJson(res, tree.status, { error: tree.error }, head) : sendJson(res, 200, tree.entries, head);
    }
    if (opts.redirectTo && /\/resolve\//.test(rawPath)) {
      res.writeHead(302, { ...CORS_HEADERS, Location: opts.redirectTo.replace(/\/+$/, '') + (req.url ?? '/'), 'Content-Length': 0 });
      return res.end();
    }
    const found = resolveFile(rawPath);
    if ('error' in found) return sendJson(res, found.status, { error: found.error }, head);

    const stat = fs.statSync(found.file);
    const size = stat.size;
    const etag = `"${size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const headers: http.OutgoingHttpHeaders = {
      ...CORS_HEADERS,
      'Content-Type': found.file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Cache-Control': 'no-cache',
      'Last-Modified': stat.mtime.toUTCString(),
    };
    if (req.headers['if-none-match'] === etag && !req.headers.range) {
      res.writeHead(304, headers);
      return res.end();
    }
    const ifRange = req.headers['if-range'];
    const range = ifRange && ifRange !== etag ? null : parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      return res.end();
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    headers['Content-Length'] = end - start + 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (head || size === 0) return res.end();
    const stream = fs.createReadStream(found.file, { start, end, highWaterMark: 64 * 1024 });
    stream.on('error', (err) => res.destroy(err));
    res.on('close', () => stream.destroy());
    if (opts.bytesPerSecond) throttle(stream, res, opts.bytesPerSecond);
    else stream.pipe(res);
  };

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
      else res.destroy();
    }
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      resolve({
        baseUrl: `http://${host}:${port}`,
        setRepo: (repo, dir) => void repos.set(repo, path.resolve(dir)),
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** Pipe `from` into `to` at about `bytesPerSecond`: each piece waits as long as its size takes at that rate. */
function throttle(from: fs.ReadStream, to: http.ServerResponse, bytesPerSecond: number): void {
  from.on('data', (piece) => {
    from.pause();
    to.write(piece);
    setTimeout(() => from.resume(), (piece.length / bytesPerSecond) * 1000);
  });
  from.on('end', () => to.end());
}

/** CLI entry point: parses `--port`, `--host`, `--models` and serves until SIGINT/SIGTERM. */
async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const modelsDir = path.resolve(arg('--models') ?? sharedModelsDir());
  const repos = defaultRepos(modelsDir);
  if (Object.keys(repos).length === 0) console.warn(`hub-server: no model folders in ${modelsDir}`);
  const hub = await startHubServer({ repos, port: Number(arg('--port') ?? 0), host: arg('--host') });
  console.log(`hub-server: ${hub.baseUrl} serving ${modelsDir}`);
  for (const id of Object.keys(repos)) console.log(`  ${hub.baseUrl}/${id}/resolve/main/`);
  const stop = () => void hub.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

// The basename check keeps bundles that inline this module (dist-bench/node-speed.js) from starting a second server.
const entry = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url) && /^hub-server\.[cm]?[jt]s$/.test(path.basename(entry))) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
