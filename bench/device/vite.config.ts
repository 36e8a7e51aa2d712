import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Bundles bench/device/device-speed.ts for the GPU machine (`npm run bench:device`, bench/device/pack.ts):
 * everything inlined (WGSL ?raw imports included) except the `webgpu` package, which the pack carries next to
 * the bundle with its dawn.node; @huggingface/transformers is replaced by a tokenizer stub.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  logLevel: 'warn',
  publicDir: false,
  resolve: { alias: { '@huggingface/transformers': fileURLToPath(new URL('./tokenizer-stub.ts', import.meta.url)) } },
  build: {
    ssr: true,
    outDir: 'dist-device/app',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: {
      input: { 'device-speed': 'bench/device/device-speed.ts' },
      output: { format: 'es', entryFileNames: '[name].mjs', chunkFileNames: '[name]-[hash].mjs', codeSplitting: false },
    },
  },
  ssr: { external: ['webgpu'], noExternal: true },
});
