// SIGKILL a worker process in the middle of a batch: the run still ends with every account
// reset once and notified once, by PostgreSQL and by the local servers' own records.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { account, insertAccounts, ledgerOf } from './support/accounts';
import { freshDatabase, startProviders, temporalClient, type Providers } from './support/harness';
import { spawnWorker, spawnWorkers, WORKER_PROCESSES, type WorkerProcess } from '../stack/worker-process';

describe('a worker killed mid-batch', () => {
  let db: Db;
  let dbUrl: string;
  let providers: Providers;
  let client: Client;
  let closeClient: () => Promise<void>;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    ({ db, url: dbUrl } = await freshDatabase('crash'));
    // Latency keeps requests in flight, so the kill lands between "sent" and "recorded".
    providers = await startProviders({ twilio: { latencyMs: [5, 25] } });
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it(`loses and duplicates nobody (${WORKER_PROCESSES} worker process${WORKER_PROCESSES > 1 ? 'es' : ''})`, async () => {
    const ids = Array.from({ length: 3000 }, (_, i) => i + 1);
    await insertAccounts(
      db,
      ids.map((id) => account(id, id % 10 === 0 ? { phone: null } : {})),
    );
    const taskQueue = `crash-${Date.now()}`;
    const env = {
      ...providers.env,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
      SEND_CONCURRENCY: '16',
    };
    // One worker (three on the cluster: the others keep working while the first dies).
    const [first, ...others] = await spawnWorkers(env, WORKER_PROCESSES);
    workers.push(first, ...others);

    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-crash',
      operator: 't',
      taskQueue,
      params: {
        batchSize: 500,
        batchConcurrency: 2,
        ratePerSecond: 400,
        // The killed worker's claims are taken over after lease + grace (over the worker's 10 s
        // Twilio timeout), then looked up before anything is resent: seconds here, minutes in production.
        leaseMs: 4_000,
        holdMs: 2_000,
        graceMs: 12_000,
      },
    });
    // Kill once a good share is sent but well before the end.
    const deadline = Date.now() + 60_000;
    while (providers.twilio.messages().length < 600 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await first.kill('SIGKILL');
    const sentAtKill = providers.twilio.messages().length;
    const claimed = await db.query(
      `SELECT count(*)::int AS n FROM ledger WHERE run_id = $1 AND notify_state = 'sending'`,
      [runId],
    );

    const second = spawnWorker(env);
    workers.push(second);
    await second.ready;
    const result = await handle.result();

    expect(sentAtKill).toBeLessThan(2700);
    // Accounts the dead worker had claimed but not recorded: the case reconciliation exists for.
    expect(claimed.rows[0].n).toBeGreaterThan(0);
    expect(result.counts).toMatchObject({
      planned: 3000,
      reset: 3000,
      sentSms: 2700,
      sentEmail: 300,
      pending: 0,
      failed: 0,
    });
    const versions = await db.query('SELECT credential_version AS v, count(*)::int AS n FROM accounts GROUP BY 1');
    expect(versions.rows).toEqual([{ v: 2, n: 3000 }]);
    expect(providers.twilio.duplicates()).toEqual([]);
    expect(providers.twilio.messages().length).toBe(2700);
    expect(providers.smtp.duplicates()).toEqual([]);
    expect(providers.smtp.countsByRecipient().size).toBe(300);
    const ledger = await ledgerOf(db, runId);
    expect([...ledger.values()].filter((r) => r.notify_state !== 'sent')).toEqual([]);
  });

  it('SIGTERM drains a worker gracefully and another worker finishes the run', async () => {
    await db.query('DELETE FROM ledger');
    await db.query('DELETE FROM checkpoints');
    await db.query('DELETE FROM runs');
    await db.query('UPDATE accounts SET credential_version = 1');
    providers.twilio.reset();
    providers.smtp.reset();
    const taskQueue = `drain-${Date.now()}`;
    const env = {
      ...providers.env,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
      SEND_CONCURRENCY: '16',
    };
    // One worker (three on the cluster: the others keep working while the first dies).
    const [first, ...others] = await spawnWorkers(env, WORKER_PROCESSES);
    workers.push(first, ...others);
    const { handle } = await startRun(db, client, {
      reason: 'INC-drain',
      operator: 't',
      taskQueue,
      params: { batchSize: 500, batchConcurrency: 2, ratePerSecond: 300 },
    });
    while (providers.twilio.messages().length < 300) await new Promise((r) => setTimeout(r, 50));
    await first.kill('SIGTERM');
    const exit = await first.exited;
    expect(exit.code).toBe(0);
    expect(first.output()).toContain('"worker stopped"');

    const second = spawnWorker(env);
    workers.push(second);
    await second.ready;
    const result = await handle.result();
    expect(result.counts).toMatchObject({ reset: 3000, sentSms: 2700, sentEmail: 300, pending: 0 });
    expect(providers.twilio.duplicates()).toEqual([]);
    expect(providers.twilio.messages().length).toBe(2700);
  });
});
