import { defineConfig } from 'vitest/config';

// Three projects: pure unit tests, data-plane tests (shard-server processes on loopback), and tests against the
// real local control plane (started once by the global setup, which builds the binaries on first use). `make
// test` runs all three, one after the other (groupOrder): two cores cannot run the data plane's load and the
// autoscaling suite's latency measurements side by side.
export default defineConfig({
  test: {
    reporters: process.env.CI ? ['verbose', 'json'] : ['default'],
    outputFile: { json: 'dist/test-results.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          sequence: { groupOrder: 0 },
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'dataplane',
          include: ['test/dataplane/**/*.test.ts'],
          sequence: { groupOrder: 1 },
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
          sequence: { groupOrder: 2 },
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
