import { defineConfig } from 'vitest/config';

/**
 * Unit/kernel tests run in Node. GPU tests share one software GPU (lavapipe/SwiftShader) on few
 * cores, so files run one at a time. Run through `npm run test:unit` so VK_ICD_FILENAMES is set.
 */
export default defineConfig({
  test: {
    environment: 'node',
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    // Child processes (not worker threads): Dawn's native addon is not thread-safe to reload.
    pool: 'forks',
    reporters: ['default'],
  },
});
