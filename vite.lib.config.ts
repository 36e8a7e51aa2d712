import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Library build (`npm run build:lib`): src/lib/index.ts as one ES module, `dist-lib/kvtab.js`, with the engine
 * worker as its own chunk next to it (`new URL(..., import.meta.url)`, so it loads from wherever the library is
 * served) and the types in `dist-lib/types` (tsconfig.lib.json). @huggingface/transformers is bundled with its
 * ONNX Runtime part stubbed out (the same alias as the app build): the engine only uses its tokenizers.
 */
const root = fileURLToPath(new URL('.', import.meta.url));
const ortStub = fileURLToPath(new URL('./src/vendor/onnxruntime-stub.ts', import.meta.url));

export default defineConfig({
  root,
  publicDir: false,
  // Relative URLs: the worker chunk loads from next to kvtab.js, wherever the library is served.
  base: './',
  build: {
    target: 'esnext',
    outDir: 'dist-lib',
    emptyOutDir: true,
    sourcemap: true,
    lib: { entry: 'src/lib/index.ts', formats: ['es'], fileName: () => 'kvtab.js' },
  },
  resolve: {
    alias: [
      { find: /^onnxruntime-web(\/.*)?$/, replacement: ortStub },
      { find: /^onnxruntime-common$/, replacement: ortStub },
    ],
  },
  worker: { format: 'es' },
});
