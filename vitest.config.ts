import { defineConfig } from 'vitest/config';

/**
 * Two projects:
 * - unit: pure logic, parallel, no Docker;
 * - integration: real components (private dockerd, registry, PostgreSQL...) started once per
 *   run by test/harness/global-setup.ts. Its files run one after another in a single fork:
 *   they share one engine and the test machine has 2 cores. It runs after the unit project
 *   (groupOrder) so the two never compete for CPU.
 */
export default defineConfig({
  test: {
    // globalSetup teardown stops the engine, which can take a few seconds
    teardownTimeout: 60_000,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          // a permissive operator policy for the test stacks (host network, /tmp binds)
          setupFiles: ['test/harness/test-policy-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
