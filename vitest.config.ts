import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Privileged e2e files each build their own namespaces and pin roots, but the machine has two
    // cores: running more than two heavy files at once only makes timeouts flaky.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
