import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

/**
 * App build: index.html at the repo root is the entry; the engine runs in an ES-module Web Worker.
 * WGSL sources are imported as strings with `?raw` (built into Vite; no plugin needed).
 * Ports: `PORT` sets the dev server (default 5173) and preview (default 4173) port.
 * index.html carries the Content-Security-Policy; the dev server injects CSS as <style> elements, so in dev
 * (only) its style-src also allows inline styles.
 */
const port = process.env.PORT ? Number(process.env.PORT) : undefined;

const devInlineStyles: Plugin = {
  name: 'kvtab-dev-csp',
  apply: 'serve',
  transformIndexHtml: (html) => html.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
};

export default defineConfig({
  plugins: [devInlineStyles],
  root: fileURLToPath(new URL('.', import.meta.url)),
  build: { target: 'esnext', outDir: 'dist', sourcemap: true },
  worker: { format: 'es' },
  server: { host: '127.0.0.1', port: port ?? 5173, strictPort: port !== undefined },
  preview: { host: '127.0.0.1', port: port ?? 4173, strictPort: true },
});
