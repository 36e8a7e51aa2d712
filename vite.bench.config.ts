import { defineConfig } from 'vite';

/**
 * Bundles the Node benchmarks and the quality harness (WGSL ?raw imports inlined) into dist-bench/, so they run
 * on plain Node. Shared chunks stay next to the entries: scripts/hub-server.ts finds the repo root as '..' of its file.
 */
export default defineConfig({
  build: {
    ssr: true,
    outDir: 'dist-bench',
    // Not emptied: `npm run eval` builds into dist-bench/eval-node and may be running from it meanwhile.
    emptyOutDir: false,
    target: 'node20',
    rollupOptions: { input: { 'node-speed': 'bench/node-speed.ts', 'attention-kernels': 'bench/attention-kernels.ts', eval: 'bench/eval.ts' }, output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' } },
  },
  ssr: { external: ['webgpu', '@huggingface/transformers'] },
});
