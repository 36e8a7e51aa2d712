import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { buildSizeReport } from './scripts/build-size-report';

/**
 * App build: index.html at the repo root is the entry; the engine runs in an ES-module Web Worker.
 * WGSL sources are imported as strings with `?raw` (built into Vite; no plugin needed).
 * Ports: `PORT` sets the dev server (default 5173) and preview (default 4173) port.
 * index.html carries the Content-Security-Policy; the dev server injects CSS as <style> elements, so in dev
 * (only) its style-src also allows inline styles.
 *
 * Page weight: `@huggingface/transformers` is used only for its tokenizers, but its web build imports
 * onnxruntime-web at module load; both onnxruntime packages resolve to a stub (src/vendor/onnxruntime-stub.ts),
 * which keeps ~400 kB of ORT JS and its 26.8 MB wasm out of `dist/`. `buildSizeReport` prints every emitted file
 * with raw and gzip bytes and fails the build if the JS (service worker included) is over 300 kB gzip or any
 * .wasm is emitted.
 *
 * Offline shell: vite-plugin-pwa (Workbox generateSW) writes `dist/sw.js`, which precaches index.html, every JS
 * chunk (the engine worker and transformers.js's chunk too), the CSS and the demo model under `models/`.
 * No web app manifest (`manifest: false`): the goal is opening offline, not installing. `registerType: 'prompt'`:
 * a new build's service worker waits until the user presses Reload in the notice (src/ui/app-update.ts, which
 * registers it in production builds only). `KVTAB_BUILD_STAMP` (env) names the build; it ends up as
 * `<html data-build>` (default `local`).
 */
const port = process.env.PORT ? Number(process.env.PORT) : undefined;
const buildStamp = process.env.KVTAB_BUILD_STAMP ?? 'local';
const ortStub = fileURLToPath(new URL('./src/vendor/onnxruntime-stub.ts', import.meta.url));

/**
 * The app always runs the engine in its worker (src/main.ts: `createEngine({ client })`), but the library's
 * backend (src/lib/backend.ts) can also run it on the calling thread, through a lazy `import('../engine/engine')`.
 * In the app build that import would emit a second copy of the engine and of transformers.js (about 170 kB
 * gzip) that the app never loads but the service worker would precache; here it resolves to a module whose
 * Engine throws. The library's own build (vite.lib.config.ts) keeps the real one. If backend.ts stops importing
 * it this way the plugin matches nothing, and the size report catches the weight.
 */
const engineFile = fileURLToPath(new URL('./src/engine/engine.ts', import.meta.url));
const libBackendFile = fileURLToPath(new URL('./src/lib/backend.ts', import.meta.url));
const NO_IN_THREAD_ENGINE = '\0kvtab-app-no-in-thread-engine';
const appWorkerOnlyEngine: Plugin = {
  name: 'kvtab-app-worker-only-engine',
  apply: 'build',
  enforce: 'pre',
  async resolveId(source, importer, options) {
    if (importer !== libBackendFile || !source.includes('engine')) return null;
    const resolved = await this.resolve(source, importer, { ...options, skipSelf: true });
    return resolved?.id === engineFile ? NO_IN_THREAD_ENGINE : null;
  },
  load(id) {
    if (id !== NO_IN_THREAD_ENGINE) return null;
    return `export class Engine { constructor() { throw new Error('The kvtab app build runs the engine in its worker only; createEngine({ worker: false }) needs the library build (npm run build:lib).'); } }`;
  },
};

const devInlineStyles: Plugin = {
  name: 'kvtab-dev-csp',
  apply: 'serve',
  transformIndexHtml: (html) => html.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
};

export default defineConfig({
  plugins: [
    devInlineStyles,
    appWorkerOnlyEngine,
    VitePWA({
      strategies: 'generateSW',
      registerType: 'prompt',
      injectRegister: false, // src/ui/app-update.ts registers it (virtual:pwa-register)
      manifest: false,
      devOptions: { enabled: false },
      workbox: {
        globPatterns: ['**/*.{js,css,html}', 'models/**/*'],
        // The demo model's safetensors is 1.2 MB; room for it (and the 0.5 MB transformers.js chunk) with margin.
        maximumFileSizeToCacheInBytes: 4 * 1024 * 1024,
        navigateFallback: 'index.html',
        cleanupOutdatedCaches: true,
      },
    }),
    buildSizeReport({ jsGzipLimit: 300_000 }),
  ],
  root: fileURLToPath(new URL('.', import.meta.url)),
  define: { __KVTAB_BUILD__: JSON.stringify(buildStamp) },
  resolve: {
    alias: [
      { find: /^onnxruntime-web(\/.*)?$/, replacement: ortStub },
      { find: /^onnxruntime-common$/, replacement: ortStub },
    ],
  },
  build: { target: 'esnext', outDir: 'dist', sourcemap: true },
  worker: { format: 'es' },
  server: { host: '127.0.0.1', port: port ?? 5173, strictPort: port !== undefined },
  preview: { host: '127.0.0.1', port: port ?? 4173, strictPort: true },
});
