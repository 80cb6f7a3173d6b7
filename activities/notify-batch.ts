// Notifies the accounts of one batch, exactly once per account, through every failure the chaos
// drill throws at it. An attempt claims pending accounts under its own token and lease (see
// claim-lease.ts), sends them through the shared gate, and records each outcome as soon as its
// send returns (outcome-recorder.ts). What it cannot settle it parks: an attempt that may have
// reached the provider becomes 'ambiguous' and is resolved by lookups (resolve-parked.ts), and
// rows a dead, frozen or partitioned attempt held are taken over only after their lease plus a
// grace. A batch ends when nothing in its range is pending and the parked rows due now are looked
// up; the run's final reconciliation (settleParked) waits until every parked row is settled.
import { FAILURE } from '../domain/failures';
import { setMaxListeners } from 'node:events';
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import pLimit from 'p-limit';
import { claimNotifyLeased, type ClaimedRow } from '../db/sql/claim-notify-leased';
import { claimDueAmbiguous, type ParkedRow } from '../db/sql/claim-due-ambiguous';
import { parkExpiredClaims } from '../db/sql/park-expired-claims';
import { readCounts } from '../db/sql/read-counts';
import { readRun } from '../db/sql/read-run';
import { readUnsettled } from '../db/sql/read-unsettled';
import type { Outcome } from '../domain/outcome';
import { claimTiming, type RunParams } from '../domain/run';
import type { ChannelPolicy, Counts } from '../domain/types';
import type { MessageConfig } from '../config';
import { ClaimLease, RunStoppedError } from './claim-lease';
import { systemClock, type ActivityDeps } from './deps';
import { notifyAccount, ProviderConfigError, type NotifyContext } from './notify-account';
import { OutcomeRecorder } from './outcome-recorder';
import { lookUpParked, settle } from './resolve-parked';
import { RunStoppingError, SendGate } from './send-gate';

export interface NotifyBatchInput {
  runId: string;
  first: number;
  last: number;
  policy: ChannelPolicy;
  /** Stop this batch when more than `failureRate` of at least `minAttempts` attempts failed. */
  guard?: { failureRate: number; minAttempts: number };
  /**
   * Wait until every parked row of the range is settled (the run's final reconciliation). Without
   * it the batch returns once only parked rows are left, so a hold period never blocks the window.
   */
  settleParked?: boolean;
}

/** Heartbeat details: what the attempt has done so far (for the Web UI's pending activity view). */
export interface NotifyProgress {
  settled: number;
  parked: number;
}

/** Largest claim: two statements per chunk instead of two per account. */
const MAX_CHUNK = 250;
/** Smallest claim, so low rates do not pay a round trip per message. */
const MIN_CHUNK = 10;
/**
 * Heartbeat this often while alive, whatever the sends are doing: a chunk slowed by throttling
 * must not look like a dead worker, or a second attempt would start beside the first.
 */
const HEARTBEAT_EVERY_MS = 2_000;
/** Bounds of the wait while parked rows of the batch are not due yet. */
const PARKED_POLL_MS = { min: 250, max: 5_000 };

/**
 * Accounts per claim: what the rate sends in about a third of a lease, so a claim is sent well
 * before its lease needs renewing and a crash leaves few rows to reconcile.
 */
export function claimSize(ratePerSecond: number, leaseMs: number): number {
  if (!(ratePerSecond > 0)) return MAX_CHUNK;
  return Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, Math.floor((ratePerSecond * leaseMs) / 3_000)));
}

interface RunSettings {
  message: MessageConfig;
  params: Partial<RunParams>;
  ratePerSecond: number;
}

export function makeNotifyBatch(deps: ActivityDeps) {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const onSend = deps.onSend ?? (() => undefined);
  // Sends in flight per run on this worker: one run waiting for its rate must never hold the
  // send slots of another run (a slow run would otherwise starve every run on the worker).
  const sendLimits = new Map<string, ReturnType<typeof pLimit>>();
  const sendLimitFor = (runId: string) => {
    let limit = sendLimits.get(runId);
    if (!limit) sendLimits.set(runId, (limit = pLimit(deps.sendConcurrency ?? 48)));
    return limit;
  };
  const gates = new Map<string, SendGate>();
  const gateFor = (runId: string) => {
    let gate = gates.get(runId);
    if (!gate) gates.set(runId, (gate = new SendGate(deps.db, runId, clock, deps.senders)));
    return gate;
  };
  const settingsFor = async (runId: string): Promise<RunSettings> => {
    const run = await readRun(deps.db, runId);
    if (!run) throw ApplicationFailure.nonRetryable(`unknown run ${runId}`, FAILURE.unknownRun);
    // Every worker sends the run's frozen text, whatever its own environment says.
    const message = { ...deps.message, ...(run.message as Partial<MessageConfig> | null) };
    return { message, params: run.params as Partial<RunParams>, ratePerSecond: run.ratePerSecond };
  };

  return async function notifyBatch(input: NotifyBatchInput): Promise<Counts> {
    const { runId, first, last, policy } = input;
    const settings = await settingsFor(runId);
    const timing = claimTiming(settings.params);

    const sendLimit = sendLimitFor(runId);
    // Stops every send of THIS attempt: on cancellation (including a heartbeat timeout the server
    // declared), on a lost lease or a stopped run, and when one account fails with an error
    // (database down...). A stopped attempt never leaves a send behind to go out later.
    const activitySignal = Context.current().cancellationSignal;
    const attempt = new AbortController();
    setMaxListeners(0, attempt.signal);
    const stopAttempt = (reason: unknown) => {
      if (!attempt.signal.aborted) attempt.abort(reason);
    };
    if (activitySignal.aborted) stopAttempt(activitySignal.reason);
    else activitySignal.addEventListener('abort', () => stopAttempt(activitySignal.reason), { once: true });
    const signal = attempt.signal;

    const lease = new ClaimLease(deps.db, runId, timing.leaseMs, stopAttempt);
    const recorder = new OutcomeRecorder(deps.db, runId, lease.token, (group, recorded) => {
      const lost = group.length - recorded.size;
      if (lost > 0) {
        // The rows were taken over after this attempt's lease ran out: whatever it sent is found
        // by the new owner's lookups. Said loudly, with ids only.
        console.warn(
          JSON.stringify({ level: 'warn', msg: 'outcomes fenced off: rows taken over', runId, first, last, lost }),
        );
      }
    });
    const ctx: NotifyContext = {
      runId,
      policy,
      sms: deps.sms,
      email: deps.email,
      gate: gateFor(runId),
      clock,
      message: settings.message,
      random,
      onSend,
      lease,
      holdMs: timing.holdMs,
      statusCallbackBase: deps.statusCallbackBase,
    };

    // Trips on a provider configuration error or too many failures: accounts not yet attempted
    // go back in line and the batch stops, so the workflow can pause the run.
    let tripped: ApplicationFailure | undefined;
    let attempts = 0;
    let failed = 0;
    let settledCount = 0;
    let parkedCount = 0;
    const judge = (o: Outcome) => {
      if (o.state !== 'sent' && o.state !== 'failed') return;
      attempts++;
      if (o.state === 'failed') failed++;
      const g = input.guard;
      if (g && g.failureRate < 1 && attempts >= g.minAttempts && failed / attempts > g.failureRate) {
        tripped ??= ApplicationFailure.nonRetryable(
          `notification failure rate ${((100 * failed) / attempts).toFixed(1)}% over ${attempts} attempts in batch ${first}..${last} exceeds ${(100 * g.failureRate).toFixed(1)}%`,
          FAILURE.failureThreshold,
          { attempts, failed },
        );
      }
    };
    const stoppedOutcome = (row: ClaimedRow): Outcome => ({
      accountId: row.accountId,
      state: 'pending',
      fellBack: row.fellBack,
    });
    /** `resend`: the row was ambiguous (two negative lookups); if it is not sent now it stays parked. */
    const attemptOne = async (row: ClaimedRow, resend = false): Promise<void> => {
      let outcome: Outcome;
      if (tripped || signal.aborted) outcome = stoppedOutcome(row);
      else {
        try {
          outcome = await notifyAccount(ctx, row, signal, row.fellBack);
        } catch (err) {
          if (err instanceof ProviderConfigError) {
            tripped ??= ApplicationFailure.nonRetryable(err.message, FAILURE.providerConfig, {
              channel: err.channel,
              code: err.code,
            });
          } else if (err instanceof RunStoppingError) {
            // Cancelled while waiting for a slot: nothing was sent for this account.
            stopAttempt(new RunStoppedError('cancelling'));
          } else stopAttempt(err);
          outcome = stoppedOutcome(row);
        }
      }
      // A row once ambiguous never goes back to plain 'pending': unsent, it is parked again.
      if (resend && outcome.state === 'pending')
        outcome = { ...outcome, state: 'ambiguous', errorCode: 'resend_not_sent', nextLookupMs: 0 };
      judge(outcome);
      if (outcome.state !== 'pending') settledCount++;
      if (outcome.state === 'ambiguous') parkedCount++;
      // Out of the lease before the write: a renewal that no longer finds the row (its outcome was
      // just written, which clears the token) must not read as a takeover.
      lease.release([outcome.accountId]);
      // An accepted email has no lookup: it is recorded before this send slot moves on, so a crash
      // can resend it only if it lands between the relay's answer and this one write.
      if (outcome.state === 'sent' && outcome.channel === 'email') await recorder.writeNow(outcome);
      else recorder.add(outcome);
    };

    const resolveOne = async (row: ParkedRow, postponed: number): Promise<void> => {
      if (signal.aborted || !lease.canSend()) return; // its lookup lease runs out; someone looks again
      const verdict = await lookUpParked(deps.db, ctx, row, timing.ambiguous, postponed);
      // As for outcomes: out of the lease before the write, back in for a resend.
      lease.release([row.accountId]);
      const askedAt = lease.now();
      const ok = await settle(deps.db, ctx, row, verdict);
      if (!ok || verdict.verdict !== 'resend') {
        if (ok && verdict.verdict === 'found') settledCount++;
        return;
      }
      lease.adopt([row.accountId], askedAt);
      // Two negative lookups a hold period apart (or an email, which has no lookup): send again,
      // under this attempt's token, and record like any other send.
      await attemptOne(row, true);
    };

    const stopError = (): unknown => {
      const reason = signal.reason ?? lease.stopped;
      if (reason instanceof RunStoppedError) {
        return ApplicationFailure.nonRetryable(
          `${reason.message}; the rest of batch ${first}..${last} goes back in line`,
          FAILURE.runStopped,
        );
      }
      return reason ?? new Error('notify attempt stopped');
    };

    const beat = setInterval(
      () => heartbeat({ settled: settledCount, parked: parkedCount } satisfies NotifyProgress),
      HEARTBEAT_EVERY_MS,
    );
    lease.start();
    const chunk = claimSize(settings.ratePerSecond, timing.leaseMs);
    const postponedBy = new Map<number, number>();
    try {
      for (;;) {
        // 1. Every pending account of the batch (including ones another attempt handed back).
        for (let cursor = first - 1; ;) {
          await lease.renew(); // sees a pause or cancel before claiming more
          if (signal.aborted || lease.stopped || tripped) break;
          const askedAt = lease.now();
          const { rows } = await claimNotifyLeased(deps.db, runId, cursor, last, chunk, lease.token, timing.leaseMs);
          if (rows.length === 0) break;
          lease.adopt(
            rows.map((r) => r.accountId),
            askedAt,
          );
          await Promise.all(rows.map((row) => sendLimit(() => attemptOne(row))));
          await recorder.flush();
          cursor = rows[rows.length - 1].accountId;
        }
        await recorder.flush();
        if (tripped) throw tripped;
        if (signal.aborted || lease.stopped) throw stopError();

        // 2. Rows a dead or cut-off attempt held past its lease and grace become parked.
        await parkExpiredClaims(deps.db, runId, first, last, timing.graceMs);
        // 3. Parked rows due for a lookup.
        const askedAt = lease.now();
        const due = await claimDueAmbiguous(deps.db, runId, first, last, MAX_CHUNK, lease.token, timing.leaseMs);
        if (due.length) {
          lease.adopt(
            due.map((r) => r.accountId),
            askedAt,
          );
          await Promise.all(
            due.map((row) =>
              sendLimit(async () => {
                const n = postponedBy.get(row.accountId) ?? 0;
                await resolveOne(row, n);
                postponedBy.set(row.accountId, n + 1);
              }),
            ),
          );
          await recorder.flush();
          if (signal.aborted || lease.stopped) throw stopError();
          continue;
        }
        // 4. Done when nothing is pending, held or waiting; else sleep until something is due.
        const u = await readUnsettled(deps.db, runId, first, last);
        if (u.pending === 0 && u.sending === 0 && u.ambiguousDue === 0) break;
        if (u.pending > 0) continue;
        if (!input.settleParked) break; // parked rows wait for the run's final reconciliation
        const now = Date.now();
        const next = Math.min(
          u.nextDue ? u.nextDue.getTime() - now : Infinity,
          u.nextExpiry ? u.nextExpiry.getTime() + timing.graceMs - now : Infinity,
        );
        await clock.sleep(Math.max(PARKED_POLL_MS.min, Math.min(PARKED_POLL_MS.max, next)));
        if (signal.aborted) throw stopError();
      }
    } finally {
      clearInterval(beat);
      lease.stop();
      await recorder.flush().catch(() => undefined);
    }
    return readCounts(deps.db, runId, { first, last });
  };
}
