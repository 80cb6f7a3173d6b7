// `npm run test:cluster`: the tests that exercise the Temporal server, against the
// production-shaped cluster (PINRESET_TEMPORAL=cluster: temporal-server 1.32.0 on PostgreSQL,
// SQL visibility, deploy/temporal/server.yaml) instead of the dev server. No Web UI there, so
// no webui test. tests/cluster.test.ts runs only here.
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  test: {
    ...base.test,
    include: [
      'tests/cluster.test.ts',
      'tests/pipeline.run.test.ts',
      'tests/pipeline.crash.test.ts',
      'tests/pipeline.history.test.ts',
      'tests/pipeline.controls.test.ts',
      'tests/roles.test.ts',
      'tests/worker.search-attributes.test.ts',
      'tests/chaos.test.ts',
    ],
    exclude: [],
  },
});
