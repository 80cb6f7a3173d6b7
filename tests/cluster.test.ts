// Only in `npm run test:cluster`: the server under test is the production-shaped cluster
// (temporal-server 1.32.0, PostgreSQL persistence and SQL visibility, 4 shards, the committed
// deploy/temporal/server.yaml), and a deploy in the middle of a run is safe on it: three "old"
// worker processes drain on SIGTERM while three "new" ones, started beside them, finish the run.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { Connection } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { TEMPORAL_SERVER_VERSION } from '../stack/temporal-cluster';
import { missingSearchAttributes } from '../workers/search-attributes-check';
import { account, insertAccounts } from './support/accounts';
import { freshDatabase, startProviders, temporalClient, type Providers } from './support/harness';
import { until } from './support/until';
import { spawnWorkers, WORKER_PROCESSES, type WorkerProcess } from '../stack/worker-process';

describe('the production-shaped cluster', () => {
  let connection: Connection;
  let db: Db;
  let dbUrl: string;
  let providers: Providers;
  let client: Client;
  let closeClient: () => Promise<void>;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    connection = await Connection.connect({ address: inject('temporalAddress') });
    ({ db, url: dbUrl } = await freshDatabase('cluster'));
    providers = await startProviders({ twilio: { latencyMs: [2, 10] } });
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await closeClient?.();
    await providers?.stop();
    await db?.end();
    await connection?.close();
  });

  it('is temporal-server 1.32.0 on PostgreSQL with SQL visibility and 4 history shards', async () => {
    expect(process.env.PINRESET_TEMPORAL).toBe('cluster');
    const info = await connection.workflowService.getClusterInfo({});
    expect(info.serverVersion).toBe(TEMPORAL_SERVER_VERSION);
    expect(info.persistenceStore).toBe('postgres12');
    expect(info.visibilityStore).toBe('postgres12');
    expect(info.historyShardCount).toBe(4);
    expect(await missingSearchAttributes(connection, 'default')).toEqual([]);
  });

  it('a deploy mid-run: old workers drain on SIGTERM, new workers finish the run', async () => {
    expect(WORKER_PROCESSES).toBe(3);
    const ids = Array.from({ length: 3000 }, (_, i) => i + 1);
    await insertAccounts(
      db,
      ids.map((id) => account(id)),
    );
    const taskQueue = `deploy-${randomUUID()}`;
    const env = {
      ...providers.env,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
      SEND_CONCURRENCY: '16',
    };
    const old = await spawnWorkers(env, WORKER_PROCESSES);
    workers.push(...old);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-deploy',
      operator: 't',
      taskQueue,
      params: { batchSize: 100, batchConcurrency: 3, ratePerSecond: 100 },
    });
    const started = Date.now();
    // Visibility on SQL is written asynchronously (the visibility queue): how long until a list
    // query sees the run. Printed, not asserted.
    await until(
      'the run in a list query',
      async () => {
        for await (const wf of client.workflow.list({ query: `PinresetRunId = '${runId}'` })) return wf;
        return undefined;
      },
      30_000,
      20,
    );
    console.log(`visibility: run listed ${Date.now() - started} ms after start`);

    // At 100 messages/s the run lasts ~30 s; three new processes take up to ~15 s to start on a
    // busy 2-core machine. Batches of 100 keep an old worker's drain (its batches in flight) short.
    await until('the first messages', async () => providers.twilio.messages().length >= 200, 120_000, 50);
    // The rollout: new workers first, then the old ones drain (SIGTERM), as compose replaces replicas.
    const fresh = await spawnWorkers(env, WORKER_PROCESSES);
    workers.push(...fresh);
    const sentAtRollout = providers.twilio.messages().length;
    await Promise.all(old.map((w) => w.kill('SIGTERM')));
    for (const w of old) {
      expect((await w.exited).code).toBe(0);
      expect(w.output()).toContain('"worker stopped"');
    }
    const sentWhenOldGone = providers.twilio.messages().length;
    const result = await handle.result();
    console.log(`deploy: new workers ready at ${sentAtRollout}/3000 sent, old workers gone at ${sentWhenOldGone}/3000`);

    expect(sentAtRollout).toBeLessThan(3000);
    expect(sentWhenOldGone).toBeLessThan(3000);
    expect(result.counts).toMatchObject({ planned: 3000, reset: 3000, sentSms: 3000, pending: 0, failed: 0 });
    expect(providers.twilio.messages()).toHaveLength(3000);
    expect(providers.twilio.duplicates()).toEqual([]);
    // The new workers did finish it: workflow tasks completed by their identities, after the old
    // ones had stopped.
    const history = await handle.fetchHistory();
    const newPids = new Set(fresh.map((w) => String(w.child.pid)));
    const completedBy = (history.events ?? [])
      .filter((e) => e.workflowTaskCompletedEventAttributes)
      .map((e) => e.workflowTaskCompletedEventAttributes!.identity ?? '');
    expect(completedBy.some((id) => newPids.has(id.slice(id.lastIndexOf(':') + 1)))).toBe(true);
    const last = completedBy[completedBy.length - 1];
    expect(newPids.has(last.slice(last.lastIndexOf(':') + 1))).toBe(true);
  });
});
