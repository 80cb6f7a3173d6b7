// Guards for a bad day: a canary before the whole cohort, and auto-pause when notifications
// fail (a failing provider range, revoked credentials) instead of burning through customers.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { createTwilioSms } from '../providers/sms';
import { LOCAL_TWILIO } from '../stack';
import { approveUpdate, cancelSignal, progressQuery, resumeSignal } from '../workflows/api';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { account, insertAccounts } from './support/accounts';
import {
  freshDatabase,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';
import { until } from './support/until';

const FILTERED_PREFIX = '+1646555'; // the local Twilio answers 30007 (filtered as spam)

describe('canary and auto-pause', () => {
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  let nextId = 1;
  const extraWorkers: RunningWorker[] = [];

  async function addAccounts(
    n: number,
    spec: (id: number) => Parameters<typeof account>[1] = () => ({}),
  ): Promise<number[]> {
    const ids = Array.from({ length: n }, (_, i) => nextId + i);
    nextId += n;
    await insertAccounts(
      db,
      ids.map((id) => account(id, spec(id))),
    );
    return ids;
  }

  beforeAll(async () => {
    ({ db } = await freshDatabase('guard'));
    providers = await startProviders({ twilio: { permanent: [{ prefix: FILTERED_PREFIX, code: 30007 }] } });
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
  });

  afterEach(async () => {
    // Only this file's runs: other test files share the server.
    const queues = [worker.taskQueue, ...extraWorkers.map((w) => w.taskQueue)].map((q) => `'${q}'`).join(', ');
    for await (const wf of client.workflow.list({
      query: `ExecutionStatus = 'Running' AND TaskQueue IN (${queues})`,
    })) {
      await client.workflow
        .getHandle(wf.workflowId)
        .terminate('test finished')
        .catch(() => undefined);
    }
  });

  afterAll(async () => {
    await Promise.all(extraWorkers.map((w) => w.stop()));
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('a canary gates notifications, never resets: every PIN is invalidated at once, the first N notified, then approval', async () => {
    const ids = await addAccounts(300);
    // Slow enough (20 msg/s: 2 s for the canary) that an early approve arrives while it runs.
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-canary',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 100, canary: 40, ratePerSecond: 20 },
    });
    await until('the first canary SMS', async () => providers.twilio.messages().length > 0);
    const early = await handle.executeUpdate(approveUpdate, { args: [{ by: 'eager@secops' }] }).catch((e) => e);
    expect(early).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((early as WorkflowUpdateFailedError).cause?.message).toMatch(
      /the canary is not done yet: the first 40 accounts are still being notified/,
    );

    const waiting = await until('the canary to finish', async () => {
      const p = await handle.query(progressQuery);
      return p.awaitingApproval ? p : undefined;
    });
    expect(waiting.phase).toBe('awaiting_approval');
    expect(waiting.approval).toBeUndefined();
    // Every PIN of the cohort invalidated while the canary was notified: the exposure window is closed.
    expect(waiting.exposureWindowMs).toBeDefined();
    await new Promise((r) => setTimeout(r, 1_000));
    const reset = await db.query(`SELECT count(*)::int AS n FROM ledger WHERE run_id = $1 AND reset_state = 'reset'`, [
      runId,
    ]);
    expect(reset.rows[0].n).toBe(300);
    expect(providers.twilio.messages().length).toBe(40);
    // Exactly the first 40 accounts by id.
    expect(new Set(providers.twilio.messages().map((m) => m.to))).toEqual(
      new Set(ids.slice(0, 40).map((id) => account(id).phone)),
    );

    const approved = await handle.executeUpdate(approveUpdate, { args: [{ by: 'lead@secops' }] });
    expect(approved).toMatchObject({ by: 'lead@secops', already: false });
    const again = await handle.executeUpdate(approveUpdate, { args: [{ by: 'someone-else' }] });
    expect(again).toEqual({ ...approved, already: true });
    const row = await db.query('SELECT approved_by, approved_at FROM runs WHERE id = $1', [runId]);
    expect(row.rows[0].approved_by).toBe('lead@secops');
    expect(Math.abs(row.rows[0].approved_at.getTime() - approved.atMs)).toBeLessThan(1_000);
    const result = await handle.result();
    expect(result.counts).toMatchObject({ planned: 300, reset: 300, sentSms: 300, pending: 0 });
    expect(providers.twilio.duplicates()).toEqual([]);
  });

  it('pauses itself when too many notifications fail, and says why', async () => {
    providers.twilio.reset();
    // Every number is filtered and nobody has an email: each attempt fails.
    const ids = await addAccounts(1000, (id) => ({
      phone: `${FILTERED_PREFIX}${String(id).padStart(4, '0')}`,
      email: null,
    }));
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-filtered',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 500, batchConcurrency: 1, ratePerSecond: 'unlimited', autoPauseFailureRate: 0.05 },
    });
    const paused = await until('the auto-pause', async () => {
      const p = await handle.query(progressQuery);
      return p.autoPaused && p.batches.inFlight === 0 ? p : undefined;
    });
    expect(paused.paused).toBe(true);
    expect(paused.pauseReason).toMatch(/auto-paused: notification failure rate 100\.0% over \d+ attempts/);
    const failed = await db.query(
      `SELECT count(*)::int AS n FROM ledger WHERE run_id = $1 AND notify_state = 'failed'`,
      [runId],
    );
    // It stopped after about one chunk, far short of the whole cohort.
    expect(failed.rows[0].n).toBeGreaterThanOrEqual(100);
    expect(failed.rows[0].n).toBeLessThanOrEqual(300);
    const sending = await db.query(
      `SELECT count(*)::int AS n FROM ledger WHERE run_id = $1 AND notify_state = 'sending'`,
      [runId],
    );
    expect(sending.rows[0].n).toBe(0);
    const status = await db.query('SELECT status, status_reason FROM runs WHERE id = $1', [runId]);
    expect(status.rows[0].status).toBe('paused');
    expect(status.rows[0].status_reason).toMatch(/auto-paused/);
    await handle.signal(cancelSignal, { reason: 'template rejected' });
    expect((await handle.result()).status).toBe('cancelled');
  });

  it('pauses on revoked provider credentials without marking a single customer failed', async () => {
    providers.twilio.reset();
    const ids = await addAccounts(200);
    const revoked = createTwilioSms({ ...LOCAL_TWILIO, authToken: 'revoked-token', apiUrl: providers.twilio.url });
    const badWorker = await startWorker(providers.deps(db, { sms: revoked }));
    extraWorkers.push(badWorker);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-revoked',
      operator: 't',
      taskQueue: badWorker.taskQueue,
      accountIds: ids,
      params: { batchSize: 100, batchConcurrency: 2, ratePerSecond: 'unlimited' },
    });
    const paused = await until('the auto-pause', async () => {
      const p = await handle.query(progressQuery);
      return p.autoPaused && p.batches.inFlight === 0 ? p : undefined;
    });
    expect(paused.pauseReason).toMatch(/sms provider rejected the configuration \(20003\)/);
    const states = await db.query(`SELECT notify_state, count(*)::int AS n FROM ledger WHERE run_id = $1 GROUP BY 1`, [
      runId,
    ]);
    expect(states.rows).toEqual([{ notify_state: 'pending', n: 200 }]);
    expect(providers.twilio.messages().length).toBe(0);

    // Credentials fixed (a worker with the right token takes over): resume finishes the run.
    await badWorker.stop();
    const goodWorker = await startWorker(providers.deps(db), badWorker.taskQueue);
    extraWorkers.push(goodWorker);
    await handle.signal(resumeSignal);
    const result = await handle.result();
    expect(result.counts).toMatchObject({ sentSms: 200, failed: 0, pending: 0 });
    expect(providers.twilio.duplicates()).toEqual([]);
  });
});
