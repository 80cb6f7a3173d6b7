// The chaos drill in small (`npm run chaos` is the big one): 3,000 seeded accounts, two worker
// processes, two SIGKILLs, a PostgreSQL restart and a Temporal restart, with the local Twilio
// answering 10% 429s, 2% 5xx and 1% accept-then-drop and the SMTP server 5% 451s. The verdict
// comes from PostgreSQL and from the providers' own records. Its own stack: the shared test
// servers must not be restarted under the other test files.
//
// Plus the regression test for fencing: an attempt whose claims were taken over (its lease ran out
// while it was frozen or cut off) sends nothing more, not even a send sleeping in a 429 backoff.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runChaos, verdictLine, type ChaosReport } from '../chaos/run';
import { planChaos } from '../chaos/schedule';
import { makeNotifyBatch } from '../activities/notify-batch';
import { createRun } from '../db/sql/create-run';
import { addCohortAccounts } from '../db/sql/add-cohort-accounts';
import { resetBatch } from '../db/sql/reset-batch';
import { DEFAULT_PARAMS } from '../domain/run';
import type { ClassifiedFailure, EmailSender, SmsSender } from '../domain/types';
import type { Db } from '../db/pool';
import { createSmtpEmail } from '../providers/email';
import { startFakeSmtp, type FakeSmtp } from '../stack/fake-smtp';
import { account, insertAccounts } from './support/accounts';
import { freshDatabase, MESSAGE } from './support/harness';

describe('chaos schedule', () => {
  it('is seeded, spreads events apart inside the window, and covers every kind', () => {
    const o = {
      seed: 42,
      workers: 2,
      kills: 5,
      postgresRestarts: 1,
      temporalRestarts: 1,
      window: [0.1, 0.9] as [number, number],
    };
    const plan = planChaos(o);
    expect(planChaos(o)).toEqual(plan);
    expect(plan.map((e) => e.kind).sort()).toEqual(
      [...Array(5).fill('kill-worker'), 'restart-postgres', 'restart-temporal'].sort(),
    );
    for (let i = 0; i < plan.length; i++) {
      expect(plan[i].at).toBeGreaterThan(0.1);
      expect(plan[i].at).toBeLessThan(0.9);
      if (i > 0) expect(plan[i].at - plan[i - 1].at).toBeGreaterThan((0.8 / 7) * 0.2 - 1e-9);
    }
    for (const k of plan.filter((e) => e.kind === 'kill-worker')) expect([0, 1]).toContain(k.worker);
    expect(planChaos({ ...o, seed: 43 })).not.toEqual(plan);
  });
});

describe('a notify attempt whose claims are taken over stops sending', () => {
  let db: Db;
  beforeAll(async () => {
    ({ db } = await freshDatabase('chaos-orphans'));
  });
  afterAll(async () => {
    await db?.end();
  });

  it('stops every send, even one sleeping in a 429 backoff, and records nothing for the lost rows', async () => {
    const THROTTLED = account(1).phone!;
    const FINE = account(2).phone!;
    await insertAccounts(db, [account(1), account(2)]);
    const runId = 'orphan-sends-1';
    await createRun(db, {
      id: runId,
      reason: 'INC-orphans',
      operator: 't',
      params: { ...DEFAULT_PARAMS, cohort: 'file', ratePerSecond: 'unlimited' },
    });
    await addCohortAccounts(db, runId, [1, 2]);
    await resetBatch(db, runId, 1, 2, 'INC-orphans');
    await db.query(`UPDATE runs SET status = 'running' WHERE id = $1`, [runId]);

    const sent: string[] = [];
    const calls = new Map<string, number>();
    const throttle = Object.assign(new Error('Too Many Requests'), { status: 429 });
    const sms: SmsSender = {
      async send({ to }) {
        calls.set(to, (calls.get(to) ?? 0) + 1);
        // Throttled for as long as it takes: the attempt sleeps in its backoff, then tries again.
        if (to === THROTTLED) throw throttle;
        sent.push(to);
        return { sid: `SM${sent.length}` };
      },
      fetch: async () => undefined,
      listToSince: async () => [],
      classify(err: unknown): ClassifiedFailure {
        return err === throttle ? { kind: 'rate_limited', code: '20429' } : { kind: 'ambiguous', code: 'x' };
      },
    };
    const email: EmailSender = {
      send: async () => ({ messageId: 'x' }),
      classify: () => ({ kind: 'transient', code: 'x' }),
      close: async () => undefined,
    };
    const notifyBatch = makeNotifyBatch({ db, sms, email, message: MESSAGE, sendConcurrency: 8, random: () => 0.99 });

    const env = new MockActivityEnvironment();
    const run = env.run(notifyBatch, { runId, first: 1, last: 2, policy: 'sms_then_email' as const }).then(
      () => 'completed',
      (e: Error) => e.message,
    );
    // Another attempt takes the rows over (as after this one's lease and grace ran out).
    for (let i = 0; i < 200 && !(calls.get(THROTTLED) ?? 0); i++) await new Promise((r) => setTimeout(r, 25));
    await db.query(`UPDATE ledger SET claim_token = gen_random_uuid() WHERE run_id = $1 AND account_id = 1`, [runId]);
    const outcome = await run;
    expect(outcome).toMatch(/taken over by another attempt/);
    const callsWhenStopped = calls.get(THROTTLED);
    // Past the backoff: a left-behind send would have gone out by now.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(calls.get(THROTTLED)).toBe(callsWhenStopped);
    expect(sent).toEqual([FINE]);
    // The row it lost stays with its new owner: this attempt's late "hand back" was fenced off.
    const rows = await db.query(`SELECT account_id, notify_state FROM ledger WHERE run_id = $1 ORDER BY 1`, [runId]);
    expect(rows.rows).toEqual([
      { account_id: 1, notify_state: 'sending' },
      { account_id: 2, notify_state: 'sent' },
    ]);
  });
});

describe('an email the relay accepted is in the ledger before the attempt sends again', () => {
  let db: Db;
  let smtp: FakeSmtp;
  let relay: EmailSender;
  beforeAll(async () => {
    ({ db } = await freshDatabase('chaos-email-record'));
    smtp = await startFakeSmtp();
    relay = createSmtpEmail({ url: smtp.url, from: 'security@carrier.example' });
  });
  afterAll(async () => {
    await relay?.close();
    await smtp?.stop();
    await db?.end();
  });

  // SMTP has no lookup: a worker SIGKILLed after the relay accepted an email but before the ledger
  // says so leaves the row 'sending', and its takeover sends the email again. The chaos drill's
  // kills landed there (accounts mailed 30 ms and 0 ms before the kill, then again after the
  // takeover) because outcomes waited up to 20 ms for a group write, and behind the write before.
  it('records each accepted email before the next send starts', async () => {
    const ids = [1, 2, 3, 4, 5, 6];
    await insertAccounts(
      db,
      ids.map((id) => account(id, { phone: null, phoneType: null })),
    );
    const runId = 'email-record-1';
    await createRun(db, {
      id: runId,
      reason: 'INC-email-record',
      operator: 't',
      params: { ...DEFAULT_PARAMS, cohort: 'file', ratePerSecond: 'unlimited' },
    });
    await addCohortAccounts(db, runId, ids);
    await resetBatch(db, runId, 1, 6, 'INC-email-record');
    await db.query(`UPDATE runs SET status = 'running' WHERE id = $1`, [runId]);

    // The real nodemailer client against the local relay, watched: when a send starts, which
    // accounts the relay has accepted so far, and which the ledger holds as sent.
    const accepted: number[] = [];
    const seen: Array<{ accepted: number[]; recorded: number[] }> = [];
    const email: EmailSender = {
      async send(m) {
        const { rows } = await db.query<{ id: string }>(
          `SELECT account_id AS id FROM ledger WHERE run_id = $1 AND notify_state = 'sent' ORDER BY 1`,
          [runId],
        );
        seen.push({ accepted: [...accepted], recorded: rows.map((r) => Number(r.id)) });
        const sent = await relay.send(m);
        accepted.push(Number(/\.(\d+)@/.exec(m.messageId)![1]));
        return sent;
      },
      classify: (err) => relay.classify(err),
      close: async () => undefined,
    };
    const sms: SmsSender = {
      send: async () => {
        throw new Error('no SMS in this test');
      },
      fetch: async () => undefined,
      listToSince: async () => [],
      classify: () => ({ kind: 'ambiguous', code: 'x' }),
    };
    const notifyBatch = makeNotifyBatch({ db, sms, email, message: MESSAGE, sendConcurrency: 1 });
    await new MockActivityEnvironment().run(notifyBatch, {
      runId,
      first: 1,
      last: 6,
      policy: 'sms_then_email' as const,
    });

    expect(smtp.messages()).toHaveLength(6);
    expect(seen).toHaveLength(6);
    for (const s of seen) expect(s.recorded).toEqual(s.accepted);
    const rows = await db.query(`SELECT count(*)::int AS n FROM ledger WHERE run_id = $1 AND notify_state = 'sent'`, [
      runId,
    ]);
    expect(rows.rows[0].n).toBe(6);
  });
});

describe('chaos: kills, restarts and provider faults', () => {
  let report: ChaosReport;

  beforeAll(async () => {
    if (process.env.DATABASE_URL || process.env.TEMPORAL_ADDRESS) return; // needs servers it may restart
    report = await runChaos({
      // Three worker processes on the production-shaped cluster (`npm run test:cluster`).
      accounts: 3_000,
      workers: process.env.PINRESET_TEMPORAL === 'cluster' ? 3 : 2,
      kills: 2,
      postgresRestarts: 1,
      temporalRestarts: 1,
      seed: 5,
      // Longer than the 15 s heartbeat timeout: Temporal retries the worker's batches elsewhere
      // while it sleeps or is cut off, and it wakes (or reconnects) holding claims.
      freezes: 1,
      freezeMs: 20_000,
      partitions: 1,
      partitionMs: 20_000,
      // Hold over the 3 s list lag; grace over the workers' 10 s Twilio timeout plus the lag, and
      // lease + grace over the freeze: an email a frozen worker sent is recorded when it wakes
      // (SMTP has no lookup, so a takeover before that would send it again).
      claim: { leaseMs: 6_000, holdMs: 4_000, graceMs: 30_000 },
      // A modest ceiling keeps the run long enough (~20 s) for every disruption to land in it.
      rate: 150,
      batchSize: 250,
      batchConcurrency: 4,
      twilioFaults: {
        rate429: 0.1,
        rate5xx: 0.02,
        rateDropAfterAccept: 0.01,
        latencyMs: [1, 15],
        listLagMs: [0, 3_000],
        rateSlowAccept: 0.005,
        rewriteLinks: true,
      },
      smtpFaults: { rate4xx: 0.05 },
      workflowBundlePath: inject('workflowBundlePath'),
      timeoutMs: 280_000,
      // PINRESET_CHAOS_KEEP=1 keeps the stack's data and the workers' log in .data/chaos-<pid>.
      keepData: Boolean(process.env.PINRESET_CHAOS_KEEP),
      // After the resets: a worker killed while it holds a reset batch stalls the run for the
      // reset activity's 5-minute start-to-close timeout (see docs/reliability.md), too long here.
      window: [0.2, 0.85],
    });
    console.log(verdictLine(report));
    // A duplicate's ledger rows and delivery times (ids only), so a failure can be diagnosed.
    for (const d of report.duplicates) console.log(`duplicate: ${JSON.stringify(d)}`);
    if (report.duplicates.length)
      for (const e of report.executed)
        console.log(`disruption: ${e.kind} worker=${e.worker ?? '-'} at=${e.firedAtMs}ms took=${e.durationMs}ms`);
  }, 360_000);

  it.skipIf(Boolean(process.env.DATABASE_URL || process.env.TEMPORAL_ADDRESS))(
    'every disruption happened and the run completed',
    () => {
      expect(report.problems).toEqual([]);
      expect(report.result?.status).toBe('completed');
      expect(report.executed.filter((e) => e.kind === 'kill-worker' && e.pid)).toHaveLength(2);
      expect(report.executed.filter((e) => e.kind === 'restart-postgres' && !e.error)).toHaveLength(1);
      expect(report.executed.filter((e) => e.kind === 'restart-temporal' && !e.error)).toHaveLength(1);
      expect(report.executed.filter((e) => e.kind === 'freeze-worker' && !e.error)).toHaveLength(1);
      expect(report.executed.filter((e) => e.kind === 'partition-worker' && !e.error)).toHaveLength(1);
      expect(report.faults.twilio.rejected429).toBeGreaterThan(100);
      expect(report.faults.twilio.dropped).toBeGreaterThan(0);
      expect(report.faults.smtp.rejected4xx).toBeGreaterThan(0);
      // Workers survive server restarts: none died that the drill did not kill.
      expect(report.unexpectedWorkerExits).toEqual([]);
    },
  );

  it.skipIf(Boolean(process.env.DATABASE_URL || process.env.TEMPORAL_ADDRESS))(
    'every cohort PIN reset exactly once',
    () => {
      const r = report.verdict!.figures.reset;
      expect(r.cohort).toBeGreaterThan(2_800);
      expect(r.resetRows + r.skippedRows).toBe(r.cohort);
      expect(r.resetOnce).toBe(r.resetRows);
      expect(r).toMatchObject({ resetTwice: 0, resetMissing: 0, resetPending: 0, outsideChanged: 0 });
      expect(report.verdict!.figures).toMatchObject({ activeMissing: 0, cohortNotActive: 0 });
    },
  );

  it.skipIf(Boolean(process.env.DATABASE_URL || process.env.TEMPORAL_ADDRESS))(
    'every reachable customer notified exactly once, everyone else with a reason',
    () => {
      const f = report.verdict!.figures;
      expect(f.notify.pending).toBe(0);
      expect(f.noReason).toBe(0);
      expect(f.channelMismatch).toBe(0);
      expect(f.notify.sentSms + f.notify.sentEmail + f.notify.unreachable + f.notify.failed + f.notify.skipped).toBe(
        f.cohort,
      );
      expect(f.sms).toMatchObject({ duplicates: 0, unrecorded: 0, missing: 0, recipientsWithSeveralUnexplained: 0 });
      expect(f.sms.accepted).toBe(f.notify.sentSms);
      expect(f.email).toMatchObject({ unrecorded: 0, missing: 0, recipientsWithSeveralUnexplained: 0 });
      expect(f.email.distinctMessageIds).toBe(f.notify.sentEmail);
      // Counted per delivery: one email per account, whatever the Message-ID, except the documented
      // crash window (a worker killed between the relay's acceptance and the ledger write: SMTP has
      // no lookup), counted apart; each is tied to a kill within 2 s of its first delivery.
      expect(f.email.duplicates).toBe(f.email.crashResends);
      expect(f.email.deliveries).toBe(f.notify.sentEmail + f.email.crashResends);
      expect(f.email.rawExtraDeliveries).toBe(f.email.crashResends);
      // Every parked notification was settled by a lookup or a policy resend, none left unresolved.
      expect(f.ambiguous.unresolved ?? 0).toBe(0);
    },
  );
});
