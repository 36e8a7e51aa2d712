/**
 * Build size report (a Vite plugin, vite.config.ts): after the build has written everything, the service worker
 * included, it lists every file in the output folder with its raw and gzip bytes (zlib level 9), sums the
 * JavaScript (every `.js` file: the page's chunks, the engine worker, transformers.js's chunk, `sw.js` and the
 * Workbox runtime), and fails the build when
 *   - that JS total is over `jsGzipLimit` bytes gzip (default 300 000, i.e. 300 kB), or
 *   - any `.wasm` file was emitted (the app runs no WebAssembly; onnxruntime's wasm sneaking back in is the
 *     usual way this happens, see src/vendor/onnxruntime-stub.ts).
 * Source maps are listed but not counted: the app never fetches them and the service worker does not precache them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Plugin, ResolvedConfig } from 'vite';

export interface SizeReportOptions {
  /** The most gzip bytes all `.js` files together may take. */
  jsGzipLimit?: number;
  /** Print the table (the checks run either way). */
  print?: boolean;
}

export interface SizedFile {
  file: string;
  raw: number;
  gzip: number;
}

/** Every file under `dir` (relative paths, `/`-separated, sorted) with raw and gzip sizes. */
export function sizeFiles(dir: string): SizedFile[] {
  const out: SizedFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const bytes = readFileSync(p);
        out.push({ file: relative(dir, p).split('\\').join('/'), raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/** The report's text, and what is wrong with the build (empty when nothing). */
export function sizeReport(files: readonly SizedFile[], jsGzipLimit: number): { text: string; problems: string[] } {
  const js = files.filter((f) => f.file.endsWith('.js'));
  const jsRaw = js.reduce((s, f) => s + f.raw, 0);
  const jsGzip = js.reduce((s, f) => s + f.gzip, 0);
  const width = Math.max(4, ...files.map((f) => f.file.length));
  const row = (a: string, b: string, c: string) => `${a.padEnd(width)}  ${b.padStart(12)}  ${c.padStart(12)}`;
  const n = (x: number) => x.toLocaleString('en-US');
  const lines = [row('file', 'raw bytes', 'gzip bytes'), row('-'.repeat(width), '-'.repeat(12), '-'.repeat(12))];
  for (const f of files) lines.push(row(f.file, n(f.raw), n(f.gzip)));
  lines.push(row(`JS total (${js.length} .js files)`, n(jsRaw), n(jsGzip)));
  lines.push(`JS gzip limit: ${n(jsGzipLimit)} bytes (${((jsGzip / jsGzipLimit) * 100).toFixed(1)}% used)`);
  const problems: string[] = [];
  if (jsGzip > jsGzipLimit) problems.push(`the app's JS is ${n(jsGzip)} bytes gzip, over the ${n(jsGzipLimit)}-byte limit`);
  const wasm = files.filter((f) => f.file.endsWith('.wasm'));
  if (wasm.length) problems.push(`WebAssembly emitted (${wasm.map((f) => f.file).join(', ')}); the app ships no .wasm (onnxruntime back in the bundle?)`);
  return { text: lines.join('\n'), problems };
}

/** The plugin: runs after every other plugin's closeBundle (vite-plugin-pwa writes sw.js there). */
export function buildSizeReport(options: SizeReportOptions = {}): Plugin {
  const limit = options.jsGzipLimit ?? 300_000;
  let config: ResolvedConfig;
  return {
    name: 'kvtab-build-size-report',
    apply: 'build',
    enforce: 'post',
    configResolved(c) {
      config = c;
    },
    closeBundle: {
      order: 'post',
      sequential: true,
      handler() {
        if (config.build.ssr) return;
        const outDir = resolve(config.root, config.build.outDir);
        const { text, problems } = sizeReport(sizeFiles(outDir), limit);
        if (options.print !== false) config.logger.info(`\nBuild size report (${outDir}):\n${text}`);
        if (problems.length) throw new Error(`Build size check failed: ${problems.join('; ')}.`);
      },
    },
  };
}
