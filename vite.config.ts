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
 * chunk (the engine worker and transformers.js's chunk too) and the CSS; the demo model under `models/` is cached
 * the first time it is used (runtime CacheFirst).
 * No web app manifest (`manifest: false`): the goal is opening offline, not installing. `registerType: 'prompt'`:
 * a new build's service worker waits until the user presses Reload in the notice (src/ui/app-update.ts, which
 * registers it in production builds only). `KVTAB_BUILD_STAMP` (env) names the build; it ends up as
 * `<html data-build>` (default `local`).
 */
const port = process.env.PORT ? Number(process.env.PORT) : undefined;
const buildStamp = process.env.KVTAB_BUILD_STAMP ?? 'local';
const ortStub = fileURLToPath(new URL('./src/vendor/onnxruntime-stub.ts', import.meta.url));

const devInlineStyles: Plugin = {
  name: 'kvtab-dev-csp',
  apply: 'serve',
  transformIndexHtml: (html) => html.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
};

export default defineConfig({
  plugins: [
    devInlineStyles,
    VitePWA({
      strategies: 'generateSW',
      registerType: 'prompt',
      injectRegister: false, // src/ui/app-update.ts registers it (virtual:pwa-register)
      manifest: false,
      devOptions: { enabled: false },
      workbox: {
        globPatterns: ['**/*.{js,css,html}'],
        // The 0.4 MB transformers.js chunk, with margin.
        maximumFileSizeToCacheInBytes: 4 * 1024 * 1024,
        navigateFallback: 'index.html',
        cleanupOutdatedCaches: true,
        // The first visit is controlled as soon as the worker is active, so a demo run on it is cached already.
        clientsClaim: true,
        // The demo model (1.2 MB) is cached when it is first used, not precached: a first visit that never runs
        // the demo downloads only the app shell. Its files are fetched whole (no ranges), so CacheFirst fits.
        runtimeCaching: [
          {
            urlPattern: ({ url, sameOrigin }) => sameOrigin && url.pathname.includes('/models/'),
            handler: 'CacheFirst',
            options: { cacheName: 'kvtab-demo-model', cacheableResponse: { statuses: [200] } },
          },
        ],
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
