// What an on-call operator sees and does (issue 14), on the real stack: the CLI as a process, the
// real worker, Temporal and PostgreSQL. Pause and cancel reach runs.status at once (the send
// path's stop flag); counts, rate, ETA and accounts in flight move with the ledger while a batch
// is still in flight; the canary gates notifications and approve is refused until it is done;
// ends read right (cancelled, paused cleared, watch says so); a failing database pauses the run
// with the reason; a workflow whose tasks fail and a stalled run show up in `status` with exit 1.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { createRun } from '../db/sql/create-run';
import { readRunStop } from '../db/sql/read-run-stop';
import { DEFAULT_PARAMS, workflowIdForRun } from '../domain/run';
import { PROJECT_ROOT } from '../stack';
import { startRun } from '../run-api/start-run';
import {
  cancelSignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  setRateUpdate,
  type Progress,
  type RunInput,
} from '../workflows/api';
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

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('operators: stop, trust the numbers, approve, read the end', () => {
  let db: Db;
  let dbUrl: string;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  let nextId = 1;

  const env = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    USER: 'ops-tester',
    PINRESET_ENV_FILE: '',
    DATABASE_URL: dbUrl,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: worker.taskQueue,
  });
  function spawnCli(args: string[]): { child: ChildProcess; done: Promise<CliResult>; out(): string } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
      cwd: PROJECT_ROOT,
      env: env(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const done = new Promise<CliResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    return { child, done, out: () => stdout };
  }
  const cli = (args: string[]) => spawnCli(args).done;

  async function addAccounts(n: number): Promise<number[]> {
    const ids = Array.from({ length: n }, (_, i) => nextId + i);
    nextId += n;
    await insertAccounts(
      db,
      ids.map((id) => account(id)),
    );
    return ids;
  }
  const progress = (runId: string): Promise<Progress> =>
    client.workflow.getHandle(workflowIdForRun(runId)).query(progressQuery);
  /** For polling: a query before the workflow's first task completes fails; that means "not yet". */
  const progressOrNot = (runId: string): Promise<Progress | undefined> => progress(runId).catch(() => undefined);
  const runRow = async (runId: string) =>
    (
      await db.query(
        'SELECT status, status_reason, stop_requested_at, approved_by, approved_at, control_seq FROM runs WHERE id = $1',
        [runId],
      )
    ).rows[0];

  beforeAll(async () => {
    ({ db, url: dbUrl } = await freshDatabase('operators'));
    providers = await startProviders();
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    for await (const wf of client.workflow.list({
      query: `TaskQueue = '${worker.taskQueue}' AND ExecutionStatus = 'Running'`,
    })) {
      await client.workflow
        .getHandle(wf.workflowId)
        .terminate('test finished')
        .catch(() => undefined);
    }
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('pause, resume and cancel reach runs.status the moment the signal arrives: readRunStop tells every send path', async () => {
    const ids = await addAccounts(200);
    // One batch of 200 at 20 msg/s: the signals land while it is in flight.
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-stop',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 200, batchConcurrency: 1, ratePerSecond: 20 },
    });
    await until('the first SMS', async () => providers.twilio.messages().length > 0);
    expect(await readRunStop(db, runId)).toEqual({ stop: false, status: 'running', reason: null });

    const figures: Record<string, number> = {};
    const timed = async (
      what: string,
      send: () => Promise<void>,
      ok: (s: Awaited<ReturnType<typeof readRunStop>>) => boolean,
    ) => {
      const t0 = Date.now();
      await send();
      const stop = await until(
        `${what} in runs.status`,
        async () => {
          const s = await readRunStop(db, runId);
          return ok(s) ? s : undefined;
        },
        30_000,
        20,
      );
      figures[what] = Date.now() - t0;
      return stop;
    };
    const paused = await timed(
      'pause',
      () => handle.signal(pauseSignal, { reason: 'complaints' }),
      (s) => s.stop,
    );
    expect(paused).toEqual({ stop: true, status: 'paused', reason: 'complaints' });
    expect((await runRow(runId)).stop_requested_at).toBeInstanceOf(Date);
    // Written before the batch in flight ended: the send path can stop it (its batch is still going).
    expect((await progress(runId)).batches.notified).toBe(0);

    const resumed = await timed(
      'resume',
      () => handle.signal(resumeSignal),
      (s) => !s.stop,
    );
    expect(resumed).toEqual({ stop: false, status: 'running', reason: null });
    expect((await runRow(runId)).stop_requested_at).toBeNull();

    // Cancel while paused: the run stops, ends cancelled, and is no longer listed as paused.
    await timed(
      'pause again',
      () => handle.signal(pauseSignal, { reason: 'second look' }),
      (s) => s.status === 'paused',
    );
    const cancelling = await timed(
      'cancel',
      () => handle.signal(cancelSignal, { reason: 'wrong cohort' }),
      (s) => s.status === 'cancelling',
    );
    expect(cancelling).toEqual({ stop: true, status: 'cancelling', reason: 'wrong cohort' });
    // A late resume changes nothing: a cancel is final.
    await handle.signal(resumeSignal);
    await handle.executeUpdate(setRateUpdate, { args: ['unlimited'] });
    const result = await handle.result();
    expect(result.status).toBe('cancelled');
    expect(await runRow(runId)).toMatchObject({ status: 'cancelled', status_reason: 'wrong cohort', control_seq: 4 });
    expect((await readRunStop(db, runId)).stop).toBe(true);
    const desc = await handle.describe();
    expect(desc.searchAttributes.PinresetPaused).toEqual([false]);
    expect(desc.searchAttributes.PinresetPhase).toEqual(['cancelled']);
    const end = await progress(runId);
    expect(end).toMatchObject({ phase: 'cancelled', endReason: 'wrong cohort' });
    // True durations: start to end, with the paused part.
    expect(end.finishedAtMs! - end.startedAtMs).toBe(result.wallTimeMs);
    expect(end.pausedMs).toBeGreaterThan(0);
    console.log(`[operators] signal -> runs.status written (ms): ${JSON.stringify(figures)}`);
  });

  it('counts, rate, ETA and accounts in flight move with the ledger while a batch is in flight; watch ends on a cancel with exit 1', async () => {
    const ids = await addAccounts(1200);
    // One batch of 1,200 at 15 msg/s (80 s): per-batch counts would show 0 sent until its end.
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-live',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 1200, batchConcurrency: 1, ratePerSecond: 15 },
    });
    const mid = await until(
      'ledger counts while the batch is in flight',
      async () => {
        const p = await progressOrNot(runId);
        // 30 s of sending before a rate is given (MIN_WINDOW_S).
        return p &&
          p.batches.notified === 0 &&
          p.batches.inFlight === 1 &&
          p.counts.sentSms >= 90 &&
          p.live &&
          p.live.windowS >= 30
          ? p
          : undefined;
      },
      60_000,
      250,
    );
    expect(mid.live!.counts.sentSms).toBe(mid.counts.sentSms);
    expect(mid.counts.pending).toBe(1200 - mid.counts.sentSms);

    const [json, text, notPaused] = await Promise.all([
      cli(['status', runId, '--json']),
      cli(['status', runId]),
      cli(['resume', runId]),
    ]);
    expect(json.code, json.stderr).toBe(0);
    const s = JSON.parse(json.stdout);
    expect(s).toMatchObject({ source: 'live', rateKind: 'last_minute', stalledSeconds: null, finished: false });
    // A figure, not a timing assertion: how close it is to the ceiling is measured by bench/eta-drill.ts.
    expect(s.rate).toBeGreaterThan(0);
    expect(s.etaSeconds).toBeGreaterThan(0);
    expect(s.inFlight).toBeGreaterThanOrEqual(0);
    expect(s.counts.sentSms).toBeGreaterThanOrEqual(mid.counts.sentSms);
    expect(text.stdout).toMatch(/counts from the ledger at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    expect(text.stdout).toMatch(/rate +: [\d.]+ msg\/s sent over the last \d+ s; ceiling 15 msg\/s; ETA \S/);
    expect(text.stdout).toMatch(/in flight: \d+ accounts being sent now/);
    expect(notPaused).toMatchObject({ code: 0, stdout: `Run ${runId} is not paused (running): nothing to resume.\n` });

    const watch = spawnCli(['status', runId, '--watch', '--interval', '0.5']);
    await until('a first watch frame', async () => watch.out().includes(`Run ${runId}`), 30_000, 100);
    const cancelled = await cli(['cancel', runId, '--reason', 'drill']);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    await handle.executeUpdate(setRateUpdate, { args: ['unlimited'] }).catch(() => undefined);
    const watched = await watch.done;
    expect(watched.code).toBe(1);
    expect(watched.stdout).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] Run /);
    expect(watched.stdout).toMatch(/state +: CANCELLED \(drill\)/);
    expect(watched.stdout.trimEnd().split('\n').pop()).toBe(
      `Run ${runId} was CANCELLED: drill. Accounts not reached stay pending: \`pinreset report ${runId} --outcome pending\`.`,
    );
  });

  it('approve is refused until the canary is done, records who and when, and is idempotent; every PIN is reset at once', async () => {
    await addAccounts(300); // more than the canary, whichever tests ran before
    const runId = 'ops-canary-1';
    const smsBefore = providers.twilio.messages().length;
    // The cohort is every active account (the other tests' too); the canary, the first 200 ids,
    // takes 25 s at 8 msg/s: time for a CLI process to start on a loaded machine.
    const started = await cli([
      'start',
      '--reason',
      'INC-CANARY',
      '--run-id',
      runId,
      '--canary',
      '200',
      '--rate',
      '8',
      '--batch-size',
      '200',
      '--auto-pause-rate',
      '1',
    ]);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toContain(
      'canary   : every PIN is invalidated at once; the first 200 accounts are notified, then notifications wait for `pinreset approve ops-canary-1`',
    );
    await until('the first canary SMS', async () => providers.twilio.messages().length > smsBefore, 60_000, 100);
    const early = await cli(['approve', runId, '--operator', 'eager']);
    expect(early.code, `${early.stdout}${early.stderr}`).toBe(1);
    expect(early.stderr).toMatch(
      /^error: approve refused for run ops-canary-1: the canary is not done yet: the first 200 accounts are still being notified/,
    );
    expect((await runRow(runId)).approved_by).toBeNull();

    const waiting = await until(
      'the canary to finish',
      async () => {
        const p = await progress(runId);
        return p.awaitingApproval ? p : undefined;
      },
      60_000,
      250,
    );
    const planned = waiting.counts.planned;
    // Every PIN of the cohort invalidated while only the canary was notified.
    const resets = await db.query(
      `SELECT count(*) FILTER (WHERE reset_state = 'reset')::int AS reset, count(*) FILTER (WHERE notify_state = 'sent')::int AS sent FROM ledger WHERE run_id = $1`,
      [runId],
    );
    expect(resets.rows[0]).toEqual({ reset: planned, sent: 200 });
    const status = await cli(['status', runId]);
    expect(status.stdout).toContain('AWAITING APPROVAL');
    expect(status.stdout).toContain(
      'canary   : first 200 accounts notified first (every PIN invalidated at once); done, waiting for approval',
    );

    const ok = await cli(['approve', runId, '--operator', 'lead@secops']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Run ops-canary-1 approved by lead@secops at \d{4}-\d\d-\d\dT/);
    const again = await cli(['approve', runId, '--operator', 'someone-else']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^Run ops-canary-1 was already approved by lead@secops at \S+: nothing changed\.\n$/);
    const row = await runRow(runId);
    expect(row.approved_by).toBe('lead@secops');
    expect(row.approved_at).toBeInstanceOf(Date);
    // Faster for the rest (it may be done already).
    await client.workflow
      .getHandle(workflowIdForRun(runId))
      .executeUpdate(setRateUpdate, { args: ['unlimited'] })
      .catch(() => undefined);
    const result = await client.workflow.getHandle(workflowIdForRun(runId)).result();
    expect(result.counts).toMatchObject({ planned, sentSms: planned, pending: 0 });
    const done = await cli(['status', runId]);
    expect(done.stdout).toMatch(
      /canary +: first 200 accounts notified first \(every PIN invalidated at once\); approved by lead@secops at /,
    );
  });

  it('a database step failing longer than --db-stall-pause pauses the run with the reason; resume continues', async () => {
    const ids = await addAccounts(50);
    await db.query(
      'ALTER FUNCTION pinreset_plan_batches(text, bigint, integer, integer) RENAME TO pinreset_plan_batches_off',
    );
    let restored = false;
    const restore = async () => {
      if (!restored)
        await db.query(
          'ALTER FUNCTION pinreset_plan_batches_off(text, bigint, integer, integer) RENAME TO pinreset_plan_batches',
        );
      restored = true;
    };
    try {
      const { runId, handle } = await startRun(db, client, {
        reason: 'INC-db',
        operator: 't',
        taskQueue: worker.taskQueue,
        accountIds: ids,
        params: { batchSize: 25, ratePerSecond: 'unlimited', dbStallPauseSeconds: 3 },
      });
      const paused = await until(
        'the run to pause itself',
        async () => {
          const p = await progressOrNot(runId);
          return p?.paused ? p : undefined;
        },
        60_000,
        250,
      );
      expect(paused.autoPaused).toBe(true);
      expect(paused.pauseReason).toMatch(
        /^auto-paused: database step planBatches kept failing for 3 s \(.*pinreset_plan_batches.*\); check PostgreSQL, then resume$/,
      );
      // Written by its own activity, a moment after the workflow paused.
      const row = await until(
        'the pause in runs.status',
        async () => {
          const r = await runRow(runId);
          return r.status === 'paused' ? r : undefined;
        },
        30_000,
        100,
      );
      expect(row.status_reason).toBe(paused.pauseReason);
      const status = await cli(['status', runId]);
      expect(status.stdout).toContain(
        'PAUSED (the run paused itself): auto-paused: database step planBatches kept failing for 3 s',
      );
      await restore();
      await handle.signal(resumeSignal);
      const result = await handle.result();
      expect(result).toMatchObject({ status: 'completed', counts: { planned: 50, sentSms: 50, pending: 0 } });
    } finally {
      await restore();
    }
  });

  it('a run whose workflow tasks fail, or that stalls, shows it in status with exit 1', async () => {
    // A workflow task that throws (here: input without params) retries forever without failing
    // the workflow: the run row stays 'created'.
    const broken = 'ops-broken-1';
    await createRun(db, {
      id: broken,
      reason: 'INC-BROKEN',
      operator: 't',
      params: { ...DEFAULT_PARAMS, cohort: 'file' },
    });
    await client.workflow.start('pinResetRun', {
      workflowId: workflowIdForRun(broken),
      taskQueue: worker.taskQueue,
      args: [{ runId: broken, reason: 'INC-BROKEN', operator: 't' } as unknown as RunInput],
    });
    const shown = await until(
      'status to diagnose the failing workflow task',
      async () => {
        const r = await cli(['status', broken, '--timeout', '1']);
        return r.stdout.includes('PROBLEM') ? r : undefined;
      },
      90_000,
      500,
    );
    expect(shown.code).toBe(1);
    expect(shown.stdout).toMatch(/PROBLEM +: its workflow tasks are failing \(attempt \d+\): .*(canary|undefined)/);
    expect(shown.stdout).toMatch(/status created/);
    await client.workflow.getHandle(workflowIdForRun(broken)).terminate('test done');

    // A run the database says is running, with accounts pending and no provider call for two
    // minutes, and no workflow behind it: stalled, and the workflow is missing.
    const stalled = 'ops-stalled-1';
    const ids = await addAccounts(3);
    await createRun(db, {
      id: stalled,
      reason: 'INC-STALL',
      operator: 't',
      params: { ...DEFAULT_PARAMS, cohort: 'file' },
    });
    await db.query(`UPDATE runs SET status = 'running', started_at = now() - interval '10 minutes' WHERE id = $1`, [
      stalled,
    ]);
    await db.query(
      `INSERT INTO ledger (run_id, account_id, reset_state, notify_state, channel, notified_at, attempt_started_at)
       SELECT $1, id, 'reset', CASE WHEN id = $2 THEN 'sent' ELSE 'pending' END, CASE WHEN id = $2 THEN 'sms' END,
              CASE WHEN id = $2 THEN now() - interval '2 minutes' END, CASE WHEN id = $2 THEN now() - interval '2 minutes' END
       FROM unnest($3::bigint[]) AS id`,
      [stalled, ids[0], ids],
    );
    await db.query(`INSERT INTO checkpoints (run_id, seq, counts, phase) VALUES ($1, 1, '{}', 'notifying')`, [stalled]);
    const r = await cli(['status', stalled, '--timeout', '1']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/STALLED +: no provider call for 2m 0\ds while 2 accounts are pending/);
    expect(r.stdout).toContain('PROBLEM  : its workflow is not known to Temporal');
  });
});
