// Exactly once across runs and policies, on the real stack: one live run per account, the same
// incident not reset twice, finishing a terminated run without a second reset or message, the
// 'hold' policy for ambiguity nobody can resolve, and redrive never touching a row that may have
// been delivered.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { CohortHeldError, RunInputError, startRun } from '../run-api/start-run';
import { finishRun } from '../run-api/finish-run';
import { redrive } from '../run-api/redrive';
import { progressQuery } from '../workflows/api';
import { account, accountSupply, ledgerOf } from './support/accounts';
import {
  freshDatabase,
  MESSAGE,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';
import { until } from './support/until';
import { randomUUID } from 'node:crypto';
import { createRun } from '../db/sql/create-run';
import { addCohortAccounts } from '../db/sql/add-cohort-accounts';
import { resetBatch } from '../db/sql/reset-batch';
import { claimNotifyLeased } from '../db/sql/claim-notify-leased';
import { claimDueAmbiguous } from '../db/sql/claim-due-ambiguous';
import { recordLeased } from '../db/sql/record-leased';
import { renewClaims } from '../db/sql/renew-claims';
import { DEFAULT_PARAMS } from '../domain/run';

describe('exactly once across runs', () => {
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  /** Fresh mobile accounts, n at a time: each test runs over its own. */
  const addAccounts = accountSupply(() => db);
  const versions = async (ids: number[]) =>
    (
      await db.query<{ v: number }>('SELECT credential_version AS v FROM accounts WHERE id = ANY($1) ORDER BY id', [
        ids,
      ])
    ).rows.map((r) => r.v);
  const smsTo = (ids: number[]) => {
    const phones = new Set(ids.map((id) => account(id).phone));
    return providers.twilio.messages().filter((m) => phones.has(m.to));
  };

  beforeAll(async () => {
    ({ db } = await freshDatabase('exactly-once'));
    providers = await startProviders();
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
  });
  beforeEach(() => providers.twilio.setFaults({ rate5xx: 0, listLagMs: 0 }));
  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('a lease covers the rows an attempt is looking up, not only those it is sending', async () => {
    const ids = await addAccounts(3);
    const runId = 'lease-lookups-1';
    await createRun(db, {
      id: runId,
      reason: 'INC-lease',
      operator: 't',
      params: { ...DEFAULT_PARAMS, cohort: 'file' },
    });
    await addCohortAccounts(db, runId, ids);
    await resetBatch(db, runId, ids[0], ids[2], 'INC-lease');
    const token = randomUUID();
    const claimed = await claimNotifyLeased(db, runId, 0, ids[2], 10, token, 30_000);
    expect(claimed.rows.map((r) => r.ref)).toEqual(claimed.rows.map(() => expect.stringMatching(/^[0-9A-F]{16}$/)));
    // One send may have gone out: parked, due for a lookup now.
    await recordLeased(db, runId, token, [
      {
        accountId: ids[0],
        state: 'ambiguous',
        channel: 'sms',
        fellBack: false,
        errorCode: 'ETIMEDOUT',
        nextLookupMs: 0,
      },
    ]);
    const other = randomUUID();
    const due = await claimDueAmbiguous(db, runId, 0, ids[2], 10, other, 30_000);
    expect(due.map((r) => r.accountId)).toEqual([ids[0]]);
    // The looking-up attempt keeps its row; the sending attempt keeps the other two.
    expect((await renewClaims(db, runId, other, [ids[0]], 30_000)).held).toEqual([ids[0]]);
    expect((await renewClaims(db, runId, token, ids, 30_000)).held.sort()).toEqual([ids[1], ids[2]]);
    // And neither can record over the other's rows.
    expect(
      await recordLeased(db, runId, token, [{ accountId: ids[0], state: 'sent', channel: 'sms', fellBack: false }]),
    ).toEqual(new Set());
  });

  it('refuses a second run over accounts an unfinished run holds, naming that run', async () => {
    const ids = await addAccounts(60);
    const first = await startRun(db, client, {
      reason: 'INC-two-starts',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      message: MESSAGE,
      params: { batchSize: 20, batchConcurrency: 1, ratePerSecond: 20 },
    });
    const err = await startRun(db, client, {
      reason: 'INC-two-starts-b',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids.slice(10, 20),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(CohortHeldError);
    expect((err as Error).message).toContain(first.runId);
    expect((err as Error).message).toMatch(/pinreset finish/);
    await first.handle.result();
    // Nothing of the refused run was recorded.
    const runs = await db.query(`SELECT count(*)::int AS n FROM runs WHERE reason = 'INC-two-starts-b'`);
    expect(runs.rows[0].n).toBe(0);
    expect(smsTo(ids)).toHaveLength(60);
  });

  it('the same incident again needs --notify-only (PINs untouched) or --reset-again', async () => {
    const ids = await addAccounts(30);
    const r1 = await startRun(db, client, {
      reason: 'INC-same',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 30, ratePerSecond: 'unlimited' },
    });
    await r1.handle.result();
    expect(await versions(ids)).toEqual(ids.map(() => 2));
    const refused = await startRun(db, client, {
      reason: 'INC-same',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
    }).catch((e) => e);
    expect(refused).toBeInstanceOf(RunInputError);
    expect((refused as Error).message).toMatch(
      /30 account\(s\) of this cohort were already reset for "INC-same".*--notify-only.*--reset-again/,
    );
    // A customer sets a new PIN meanwhile: a notify-only run must not wipe it.
    await db.query(
      `UPDATE accounts SET pin_hash = 'chosen', pin_status = 'set', credential_version = 3 WHERE id = $1`,
      [ids[0]],
    );
    const r2 = await startRun(db, client, {
      reason: 'INC-same',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 30, ratePerSecond: 'unlimited', resetMode: 'notify_only' },
    });
    const result = await r2.handle.result();
    expect(result.counts).toMatchObject({ reset: 30, sentSms: 30 });
    expect(await versions(ids)).toEqual([3, ...ids.slice(1).map(() => 2)]);
    const kept = await db.query(
      `SELECT encode(pin_hash, 'escape') AS pin_hash, pin_status FROM accounts WHERE id = $1`,
      [ids[0]],
    );
    expect(kept.rows[0]).toEqual({ pin_hash: 'chosen', pin_status: 'set' });
  });

  it('finish after terminate: the rest is notified, nobody twice, no PIN reset twice, references kept', async () => {
    const ids = await addAccounts(120);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-finish',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      message: MESSAGE,
      params: { batchSize: 20, batchConcurrency: 2, ratePerSecond: 30, leaseMs: 3_000, holdMs: 1_000, graceMs: 6_000 },
    });
    await until(
      'some SMS',
      async () => (await handle.query(progressQuery)).counts.sentSms > 0 || smsTo(ids).length > 20,
    );
    const refsBefore = new Map([...(await ledgerOf(db, runId))].map(([id, r]) => [id, r.ref]));
    await handle.terminate('operator pressed Terminate');
    const sentAtTerminate = smsTo(ids).length;
    expect(sentAtTerminate).toBeLessThan(120);
    // Terminated: the run still holds its accounts.
    const held = await startRun(db, client, {
      reason: 'INC-other',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
    }).catch((e) => e);
    expect(held).toBeInstanceOf(CohortHeldError);

    const finishing = await finishRun(db, client, runId, worker.taskQueue);
    const result = await finishing.result();
    expect(result.status).toBe('completed');
    expect(result.counts).toMatchObject({ planned: 120, reset: 120, sentSms: 120, pending: 0, ambiguous: 0 });
    const perPhone = new Map<string, number>();
    for (const m of smsTo(ids)) perPhone.set(m.to, (perPhone.get(m.to) ?? 0) + 1);
    expect(perPhone.size).toBe(120);
    expect([...perPhone.values()].every((n) => n === 1)).toBe(true);
    expect(await versions(ids)).toEqual(ids.map(() => 2));
    const after = await ledgerOf(db, runId);
    for (const [id, ref] of refsBefore) if (ref) expect(after.get(id)!.ref).toBe(ref);
  });

  it('with --ambiguous hold, a send nobody can find is held and reported, never resent; redrive leaves it alone', async () => {
    const ids = await addAccounts(20);
    // This fake answers 5xx before processing: the send did not happen, but nobody can know.
    providers.twilio.setFaults({ rate5xx: 1 });
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-hold',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: {
        batchSize: 20,
        ratePerSecond: 'unlimited',
        ambiguous: 'hold',
        holdMs: 1_000,
        graceMs: 6_000,
        autoPauseFailureRate: 1,
      },
    });
    const result = await handle.result();
    expect(result.counts).toMatchObject({ sentSms: 0, ambiguous: 20, pending: 0 });
    expect(smsTo(ids)).toHaveLength(0);
    const rows = await db.query(
      `SELECT notify_state, resolved_by, error_code, negative_lookups FROM ledger WHERE run_id = $1 GROUP BY 1, 2, 3, 4`,
      [runId],
    );
    expect(rows.rows).toEqual([
      { notify_state: 'ambiguous', resolved_by: 'held', error_code: 'ambiguous_held', negative_lookups: 1 },
    ]);
    // Mark them failed by hand (as an operator might): redrive still refuses to send them again.
    await db.query(`UPDATE ledger SET notify_state = 'failed' WHERE run_id = $1`, [runId]);
    const r = await redrive(db, client, {
      sourceRunId: runId,
      reason: 'INC-hold-redrive',
      operator: 't',
      params: {},
      taskQueue: worker.taskQueue,
    });
    expect(r).toMatchObject({ started: false });
  });
});
