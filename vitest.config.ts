import { defineConfig } from 'vitest/config';

// Two projects: pure unit tests, and tests against the real local control plane (started once by the global
// setup, which builds the binaries on first use). `make test` runs both.
export default defineConfig({
  test: {
    reporters: process.env.CI ? ['verbose', 'json'] : ['default'],
    outputFile: { json: 'dist/test-results.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'dataplane',
          include: ['test/dataplane/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
          // Each suite starts several shard-server processes; two cores run one suite at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'cluster',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/cluster/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 240_000,
          // Two cores: cluster suites run one file at a time beside the control plane.
          fileParallelism: false,
        },
      },
    ],
  },
});
