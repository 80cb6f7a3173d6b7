// Twenty workers (issue 12, item 6): the notify window scales with the worker processes instead
// of a fixed 8, and PostgreSQL connections are budgeted (workers x pool + reserve against the
// server's max_connections): a worker refuses to start when the budget does not fit.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { ConfigError, connectionBudgetProblem, notifyBatchesFromEnv, notifyBatchesInFlight } from '../config';
import { readConnectionLimits } from '../db/sql/read-connection-limits';
import { freshDatabase, startProviders, type Providers } from './support/harness';
import { spawnWorker } from '../stack/worker-process';

describe('notify batches in flight scale with the workers', () => {
  it('two per worker process, never below the run default nor above the limit', () => {
    expect(notifyBatchesInFlight(1)).toBe(8);
    expect(notifyBatchesInFlight(4)).toBe(8);
    expect(notifyBatchesInFlight(20)).toBe(40);
    expect(notifyBatchesInFlight(500)).toBe(200);
    expect(notifyBatchesFromEnv({ PINRESET_WORKERS: '20' })).toBe(40);
    expect(notifyBatchesFromEnv({})).toBe(8);
    expect(() => notifyBatchesFromEnv({ PINRESET_WORKERS: 'twenty' })).toThrow(ConfigError);
    expect(() => notifyBatchesFromEnv({ PINRESET_WORKERS: '0' })).toThrow(/PINRESET_WORKERS/);
  });
});

describe('PostgreSQL connections budgeted', () => {
  it('workers x pool size + reserve against max_connections - superuser_reserved_connections', () => {
    const server = { maxConnections: 100, superuserReserved: 3 };
    expect(connectionBudgetProblem({ workers: 8, poolSize: 10, reserved: 10, ...server })).toBeUndefined(); // 90 <= 97
    const over = connectionBudgetProblem({ workers: 20, poolSize: 10, reserved: 10, ...server });
    expect(over).toMatch(
      /PINRESET_WORKERS \(20\) x DATABASE_POOL_SIZE \(10\) \+ DATABASE_RESERVED_CONNECTIONS \(10\) = 210/,
    );
    expect(over).toMatch(/allows 97 \(max_connections 100 - superuser_reserved_connections 3\)/);
  });

  let providers: Providers;
  let dbUrl: string;
  let closeDb: () => Promise<void>;
  let limits: { maxConnections: number; superuserReserved: number };
  beforeAll(async () => {
    const db = await freshDatabase('budget');
    dbUrl = db.url;
    limits = await readConnectionLimits(db.db);
    closeDb = () => db.db.end();
    providers = await startProviders();
  });
  afterAll(async () => {
    await providers?.stop();
    await closeDb?.();
  });

  it('reads the limits from the server', () => {
    expect(limits.maxConnections).toBeGreaterThan(limits.superuserReserved);
  });

  it('a worker process whose budget exceeds the server exits 1 and says why', async () => {
    // One connection more than the server allows.
    const workers = Math.floor((limits.maxConnections - limits.superuserReserved) / 10) + 1;
    const w = spawnWorker({
      ...providers.env,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: `budget-${randomUUID()}`,
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
      PINRESET_WORKERS: String(workers),
      DATABASE_POOL_SIZE: '10',
      DATABASE_RESERVED_CONNECTIONS: '0',
    });
    w.ready.catch(() => undefined); // it must never get ready
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    expect(w.output()).toContain(`PINRESET_WORKERS (${workers}) x DATABASE_POOL_SIZE (10)`);
    expect(w.output()).not.toContain('"worker started"');
  });
});
