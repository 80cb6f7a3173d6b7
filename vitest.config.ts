import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Needs the production-shaped cluster: `npm run test:cluster` (vitest.cluster.config.ts).
    exclude: ['**/node_modules/**', 'tests/cluster.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    // Real servers: Temporal, PostgreSQL and worker processes share 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
