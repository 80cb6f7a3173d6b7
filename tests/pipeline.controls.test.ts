// Steering a run (pause, resume, cancel, set-rate) and provider trouble (429 storm, ambiguous
// timeouts), on the real stack.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { cancelSignal, pauseSignal, progressQuery, resumeSignal, setRateUpdate } from '../workflows/api';
import { account, accountSupply, ledgerOf } from './support/accounts';
import {
  freshDatabase,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';
import { until } from './support/until';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('run controls and provider trouble', () => {
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  /** Fresh mobile accounts, n at a time: each test runs over its own. */
  const addAccounts = accountSupply(() => db);

  beforeAll(async () => {
    ({ db } = await freshDatabase('controls'));
    providers = await startProviders();
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
  });

  beforeEach(() => {
    providers.twilio.reset();
  });

  // A failed test must not leave its run going in the background of the next one.
  afterEach(async () => {
    for await (const wf of client.workflow.list({
      query: `TaskQueue = '${worker.taskQueue}' AND ExecutionStatus = 'Running'`,
    })) {
      await client.workflow
        .getHandle(wf.workflowId)
        .terminate('test finished')
        .catch(() => undefined);
    }
  });

  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('with a slow notification rate, every PIN is invalidated long before notifications finish', async () => {
    const ids = await addAccounts(400);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-slow',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 50, batchConcurrency: 4, ratePerSecond: 50 },
    });
    const result = await handle.result();
    const times = await db.query(
      `SELECT extract(epoch FROM max(reset_at) - min(reset_at)) AS reset_span,
              extract(epoch FROM max(notified_at) - max(reset_at)) AS notify_after_reset
       FROM ledger WHERE run_id = $1`,
      [runId],
    );
    // 400 messages at 50/s take ~8 s; the resets are done in well under that.
    expect(Number(times.rows[0].reset_span)).toBeLessThan(3);
    expect(Number(times.rows[0].notify_after_reset)).toBeGreaterThan(4);
    expect(result.counts).toMatchObject({ reset: 400, sentSms: 400, pending: 0 });
    expect(result.exposureWindowMs).toBeLessThan(5_000);
  });

  it('pause stops dispatching, resume continues, and the run still notifies everyone once', async () => {
    const ids = await addAccounts(300);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-pause',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 20, batchConcurrency: 1, ratePerSecond: 100 },
    });
    await until('first SMS', async () => (await handle.query(progressQuery)).counts.sentSms > 0);
    await handle.signal(pauseSignal, { reason: 'checking templates' });
    const paused = await until('pause to settle', async () => {
      const p = await handle.query(progressQuery);
      return p.paused && p.batches.inFlight === 0 ? p : undefined;
    });
    expect(paused.pauseReason).toBe('checking templates');
    const status = await db.query('SELECT status, status_reason FROM runs WHERE id = $1', [runId]);
    expect(status.rows[0]).toEqual({ status: 'paused', status_reason: 'checking templates' });
    const sentWhilePaused = (await handle.query(progressQuery)).counts.sentSms;
    await sleep(1_500);
    expect((await handle.query(progressQuery)).counts.sentSms).toBe(sentWhilePaused);
    expect(sentWhilePaused).toBeLessThan(300);

    await handle.signal(resumeSignal);
    const result = await handle.result();
    expect(result.counts).toMatchObject({ sentSms: 300, pending: 0 });
    const perRecipient = providers.twilio.countsByRecipient();
    const ledger = await ledgerOf(db, runId);
    for (const id of ids) expect(perRecipient.get(account(id).phone!)).toBe(1);
    expect([...ledger.values()].every((r) => r.notify_state === 'sent')).toBe(true);
  });

  it('set-rate validates its value and changes the rate while the run goes', async () => {
    const ids = await addAccounts(200);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-rate',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 20, batchConcurrency: 2, ratePerSecond: 20 },
    });
    for (const bad of [-5, 1e9, '100' as unknown as number]) {
      const err = await handle.executeUpdate(setRateUpdate, { args: [bad] }).catch((e) => e);
      expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((err as WorkflowUpdateFailedError).cause?.message).toMatch(
        /ratePerSecond must be a number from 0.2 to 100000/,
      );
    }
    const changed = await handle.executeUpdate(setRateUpdate, { args: [400] });
    expect(changed).toEqual({ previous: 20, current: 400 });
    const row = await db.query('SELECT rate_per_second FROM runs WHERE id = $1', [runId]);
    expect(row.rows[0].rate_per_second).toBe(400);
    const started = Date.now();
    const result = await handle.result();
    // At 20/s the 200 messages would take 10 s; at 400/s well under that.
    expect(Date.now() - started).toBeLessThan(9_000);
    expect(result.counts.sentSms).toBe(200);
  });

  it('cancel is graceful: batches in flight finish and the run records where it stopped', async () => {
    const ids = await addAccounts(400);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-cancel',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 20, batchConcurrency: 1, ratePerSecond: 100 },
    });
    await until('first SMS', async () => (await handle.query(progressQuery)).counts.sentSms > 0);
    await handle.signal(cancelSignal, { reason: 'wrong cohort' });
    const result = await handle.result();
    expect(result.status).toBe('cancelled');
    expect(result.counts.sentSms).toBeGreaterThan(0);
    expect(result.counts.sentSms).toBeLessThan(400);
    // Nothing half-done: every account is either settled or still pending, none left 'sending'.
    const states = await db.query(`SELECT notify_state, count(*)::int AS n FROM ledger WHERE run_id = $1 GROUP BY 1`, [
      runId,
    ]);
    const byState = Object.fromEntries(states.rows.map((r) => [r.notify_state, r.n]));
    expect(byState.sending).toBeUndefined();
    expect(byState.sent).toBe(result.counts.sentSms);
    const run = await db.query(
      'SELECT status, status_reason, finished_at IS NOT NULL AS finished FROM runs WHERE id = $1',
      [runId],
    );
    expect(run.rows[0]).toEqual({ status: 'cancelled', status_reason: 'wrong cohort', finished: true });
    const phones = new Set(ids.map((id) => account(id).phone));
    expect(providers.twilio.messages().filter((m) => phones.has(m.to)).length).toBe(result.counts.sentSms);
  });

  it('a 429 storm slows the run but fails nobody and duplicates nothing', async () => {
    const ids = await addAccounts(300);
    providers.twilio.setFaults({ rate429: 0.5 });
    try {
      const { handle } = await startRun(db, client, {
        reason: 'INC-429',
        operator: 't',
        taskQueue: worker.taskQueue,
        accountIds: ids,
        params: { batchSize: 50, batchConcurrency: 3, ratePerSecond: 'unlimited' },
      });
      const result = await handle.result();
      expect(result.counts).toMatchObject({ sentSms: 300, failed: 0, pending: 0 });
      expect(providers.twilio.stats().rejected429).toBeGreaterThan(100);
      expect(providers.twilio.duplicates()).toEqual([]);
    } finally {
      providers.twilio.setFaults({ rate429: 0 });
    }
  });

  it('ambiguous failures (accepted, then the connection drops) are parked and resolved by lookups, never resent blindly', async () => {
    const ids = await addAccounts(300);
    // Twilio as it behaves: the list lags the creates by up to 1.5 s here (minutes in reality).
    providers.twilio.setFaults({ rateDropAfterAccept: 0.2, rate5xx: 0.05, listLagMs: [0, 1_500] });
    try {
      const { runId, handle } = await startRun(db, client, {
        reason: 'INC-drop',
        operator: 't',
        taskQueue: worker.taskQueue,
        accountIds: ids,
        // Hold longer than the list lag; grace longer than the client timeout (5 s) plus the lag.
        params: { batchSize: 50, batchConcurrency: 3, ratePerSecond: 'unlimited', holdMs: 2_000, graceMs: 7_000 },
      });
      const result = await handle.result();
      expect(result.counts).toMatchObject({ sentSms: 300, failed: 0, pending: 0, ambiguous: 0 });
      // Every parked row says how it was settled: found in the list (dropped after accept) or
      // resent after two negative lookups (the 5xx this fake answers before processing).
      const parked = await db.query(
        `SELECT resolved_by, count(*)::int AS n FROM ledger WHERE run_id = $1 AND ever_ambiguous GROUP BY 1 ORDER BY 1`,
        [runId],
      );
      const by = Object.fromEntries(parked.rows.map((r) => [r.resolved_by, r.n]));
      expect(by.list).toBeGreaterThan(20);
      expect(by.resend).toBeGreaterThan(0);
      expect(Object.keys(by).every((k) => ['list', 'resend'].includes(k))).toBe(true);
      expect(providers.twilio.stats().dropped).toBeGreaterThan(20);
      expect(providers.twilio.duplicates()).toEqual([]);
      // Every ledger SID is a message the provider really holds for that account.
      const held = new Map(providers.twilio.messages().map((m) => [m.sid, m.to]));
      for (const [id, row] of await ledgerOf(db, runId))
        expect(held.get(row.provider_message_id!)).toBe(account(id).phone);
    } finally {
      providers.twilio.setFaults({ rateDropAfterAccept: 0, rate5xx: 0, listLagMs: 0 });
    }
  });
});
