import { defineConfig } from 'vite';

/** Bundles the Node benchmarks (WGSL ?raw imports inlined) into dist-bench/, so they run on plain Node. */
export default defineConfig({
  build: {
    ssr: true,
    outDir: 'dist-bench',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: { input: { 'node-speed': 'bench/node-speed.ts' }, output: { format: 'es', entryFileNames: '[name].js' } },
  },
  ssr: { external: ['webgpu', '@huggingface/transformers'] },
});
