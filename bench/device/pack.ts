/**
 * `npm run bench:device`: packs dist-device/, a self-contained folder (at most 60 MiB) for a GPU machine with no
 * network or npm (../shared/docs/testing.md, "On a machine with a real GPU"):
 *   run.sh                       the one script to run there (bench/device/run.sh)
 *   node.xz                      this machine's Node binary
 *   app/device-speed.mjs         the benchmark, bundled by bench/device/vite.config.ts
 *   app/node_modules/webgpu/     the webgpu package's loader (index.js) and dist/linux-x64/dawn.node.xz
 *   app/models/<name>/config.json  real shapes of SmolLM2-135M/360M, Qwen2.5-0.5B, Llama-3.2-1B (random weights there)
 *   debs/<package>.deb           the Vulkan loader and GL/EGL dispatch libraries (apt-get download), xz-utils
 * Compressed files and .debs are cached in node_modules/.cache/kvtab-device/.
 *   tsx bench/device/pack.ts [--out dist-device] [--no-debs]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { parseModelConfig } from '../../src/model/config';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HERE = path.join(ROOT, 'bench/device');
const CACHE = path.join(ROOT, 'node_modules/.cache/kvtab-device');
const LIMIT_BYTES = 60 * 1024 * 1024;
/** testing.md's list, plus what they need that a minimal Debian may lack, and xz for unpacking. */
const DEBS = ['libvulkan1', 'libegl1', 'libglvnd0', 'libopengl0', 'libgl1', 'libglx0', 'libgles2', 'libx11-6', 'libxcb1', 'libxau6', 'libxdmcp6', 'libbsd0', 'libmd0', 'libxext6', 'xz-utils'];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const log = (s: string) => process.stderr.write(`[bench:device] ${s}\n`);
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** `src` xz-compressed into the cache (reused while the source's size and mtime are unchanged), copied to `dest`. */
function xzCached(src: string, dest: string): void {
  const st = fs.statSync(src);
  const cached = path.join(CACHE, `${path.basename(src)}-${st.size}-${Math.floor(st.mtimeMs)}.xz`);
  if (!fs.existsSync(cached)) {
    log(`compressing ${src} (${mib(st.size)}) with xz; about 2 minutes for Node on 2 cores, cached afterwards`);
    fs.mkdirSync(CACHE, { recursive: true });
    const tmp = `${cached}.tmp`;
    execFileSync('bash', ['-c', 'xz -9 -T0 -c "$1" > "$2"', 'xz', src, tmp], { stdio: 'inherit' });
    fs.renameSync(tmp, cached);
  }
  fs.copyFileSync(cached, dest);
}

function fetchDebs(dest: string): void {
  const dir = path.join(CACHE, 'debs');
  fs.mkdirSync(dir, { recursive: true });
  const have = (pkg: string) => fs.readdirSync(dir).some((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  const missing = DEBS.filter((p) => !have(p));
  if (missing.length) {
    log(`apt-get download ${missing.join(' ')}`);
    const download = () => execFileSync('apt-get', ['download', ...missing], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      download();
    } catch {
      log('apt-get download failed; running apt-get update once');
      execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
      download();
    }
  }
  for (const p of DEBS) {
    const f = fs.readdirSync(dir).filter((x) => x.startsWith(`${p}_`) && x.endsWith('.deb')).sort().pop();
    if (!f) throw new Error(`No .deb of ${p} in ${dir}.`);
    fs.copyFileSync(path.join(dir, f), path.join(dest, `${p}.deb`)); // plain names: versions carry ':' as %3a
  }
}

function du(p: string): number {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((s, f) => s + du(path.join(p, f)), 0);
}

async function main() {
  const out = path.resolve(ROOT, arg('out', 'dist-device'));
  fs.rmSync(out, { recursive: true, force: true });
  const app = path.join(out, 'app');
  await build({ configFile: path.join(HERE, 'vite.config.ts'), build: { outDir: app, emptyOutDir: true } });

  // The webgpu package as node resolves it from the bundle: app/node_modules/webgpu (index.js loads dist/<platform>-<arch>/dawn.node).
  const wgSrc = path.join(ROOT, 'node_modules/webgpu');
  const wg = path.join(app, 'node_modules/webgpu');
  fs.mkdirSync(path.join(wg, 'dist/linux-x64'), { recursive: true });
  for (const f of ['package.json', 'index.js', 'LICENSE.md']) if (fs.existsSync(path.join(wgSrc, f))) fs.copyFileSync(path.join(wgSrc, f), path.join(wg, f));
  const loader = fs.readFileSync(path.join(wg, 'index.js'), 'utf8');
  const bare = [...loader.matchAll(/(?:from\s+|require\()\s*['"]([^'"./][^'"]*)['"]/g)].map((m) => m[1]).filter((s) => !s.startsWith('node:') && !['path', 'url', 'module', 'fs', 'os'].includes(s));
  if (bare.length) throw new Error(`node_modules/webgpu/index.js imports ${bare.join(', ')}; carry them too.`);
  xzCached(path.join(wgSrc, 'dist/linux-x64/dawn.node'), path.join(wg, 'dist/linux-x64/dawn.node.xz'));

  // Model shapes (validated by the engine's own parser).
  const models = path.join(app, 'models');
  for (const name of fs.readdirSync(path.join(HERE, 'models')).sort()) {
    const cfg = path.join(HERE, 'models', name, 'config.json');
    parseModelConfig(JSON.parse(fs.readFileSync(cfg, 'utf8')));
    fs.mkdirSync(path.join(models, name), { recursive: true });
    fs.copyFileSync(cfg, path.join(models, name, 'config.json'));
  }

  xzCached(process.execPath, path.join(out, 'node.xz'));
  fs.writeFileSync(path.join(out, 'node.version'), `${process.version}\n`);
  if (!process.argv.includes('--no-debs')) {
    fs.mkdirSync(path.join(out, 'debs'));
    fetchDebs(path.join(out, 'debs'));
  }
  fs.copyFileSync(path.join(HERE, 'run.sh'), path.join(out, 'run.sh'));
  fs.chmodSync(path.join(out, 'run.sh'), 0o755);

  const total = du(out);
  const rel = path.relative(process.cwd(), out) || '.';
  log(`packed ${rel}/: ${mib(total)} (limit ${mib(LIMIT_BYTES)})`);
  for (const f of ['node.xz', 'app/node_modules/webgpu/dist/linux-x64/dawn.node.xz', 'app/device-speed.mjs', 'debs']) {
    if (fs.existsSync(path.join(out, f))) log(`  ${f}: ${mib(du(path.join(out, f)))}`);
  }
  if (total > LIMIT_BYTES) {
    log(`FAILED: ${rel}/ is over ${mib(LIMIT_BYTES)}`);
    process.exit(1);
  }
  log(`on the GPU machine (carry ${rel}/), run:  bash ${rel}/run.sh`);
  log(`  (bash ${rel}/run.sh --quick for a one-model smoke test; flags after run.sh go to device-speed.mjs)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
