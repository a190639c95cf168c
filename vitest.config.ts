import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // 2-core machines: e2e suites start real processes, so files run in a small pool.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default'],
  },
});
