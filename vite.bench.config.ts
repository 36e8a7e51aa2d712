import { defineConfig } from 'vite';

/**
 * Bundles the Node benchmarks and the quality harness (WGSL ?raw imports inlined) into dist-bench/, so they run
 * on plain Node. Shared chunks stay next to the entries: scripts/hub-server.ts finds the repo root as '..' of its file.
 */
export default defineConfig({
  build: {
    ssr: true,
    outDir: 'dist-bench',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: { input: { 'node-speed': 'bench/node-speed.ts', eval: 'bench/eval.ts' }, output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' } },
  },
  ssr: { external: ['webgpu', '@huggingface/transformers'] },
});
