import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { activityInfo, ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import pLimit from 'p-limit';
import { claimNotifyChunk, type ClaimedRow } from '../db/sql/claim-notify-chunk';
import { readCounts } from '../db/sql/read-counts';
import { recordOutcomes } from '../db/sql/record-outcomes';
import { messageRef } from '../domain/templates';
import type { ChannelPolicy, Counts } from '../domain/types';
import { systemClock, type ActivityDeps } from './deps';
import { notifyAccount, ProviderConfigError } from './notify-account';
import type { Outcome } from '../domain/outcome';
import { RunStoppingError, SendGate } from './send-gate';

export interface NotifyBatchInput {
  runId: string;
  first: number;
  last: number;
  policy: ChannelPolicy;
  /** Stop this batch when more than `failureRate` of at least `minAttempts` attempts failed. */
  guard?: { failureRate: number; minAttempts: number };
}


/** Heartbeat details: every account up to `cursor` has its outcome recorded. */
export interface NotifyProgress {
  cursor: number;
}

/** Accounts claimed and recorded together: two statements per chunk instead of two per account. */
const CHUNK = 250;
/**
 * Heartbeat this often while alive, whatever the sends are doing: a chunk slowed by throttling
 * must not look like a dead worker, or a second attempt would start beside the first.
 */
const HEARTBEAT_EVERY_MS = 2_000;

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

  return async function notifyBatch(input: NotifyBatchInput): Promise<Counts> {
    const { runId, first, last, policy } = input;
    const resumed = activityInfo().heartbeatDetails as NotifyProgress | undefined;
    let cursor = resumed?.cursor ?? first - 1;
    const ctx = {
      runId, policy, sms: deps.sms, email: deps.email, gate: gateFor(runId), clock, message: deps.message, random, onSend,
      ref: (accountId: number) => messageRef(runId, accountId, (s) => createHash('sha256').update(s).digest()),
      statusCallbackBase: deps.statusCallbackBase,
    };
    const sendLimit = sendLimitFor(runId);
    // Stops every send of THIS attempt: on cancellation (including a heartbeat timeout the server
    // declared) and as soon as one account fails with an error (database down...). Without it, a
    // failed attempt left sends behind, queued or sleeping in a 429 backoff, that went out after
    // the retry had already reconciled and sent to the same accounts: duplicate SMS (chaos run).
    const activitySignal = Context.current().cancellationSignal;
    const attempt = new AbortController();
    // Every send paused in a backoff listens on it for a moment: up to the worker's send concurrency.
    setMaxListeners(0, attempt.signal);
    const stopAttempt = (reason: unknown) => {
      if (!attempt.signal.aborted) attempt.abort(reason);
    };
    if (activitySignal.aborted) stopAttempt(activitySignal.reason);
    else activitySignal.addEventListener('abort', () => stopAttempt(activitySignal.reason), { once: true });
    const signal = attempt.signal;
    // Trips on a provider configuration error or too many failures: accounts not yet attempted
    // are released back to pending and the batch stops, so the workflow can pause the run.
    let tripped: ApplicationFailure | undefined;
    let attempts = 0;
    let failed = 0;
    const guarded = async (row: ClaimedRow): Promise<Outcome> => {
      if (tripped) return { accountId: row.accountId, state: 'pending', fellBack: false };
      try {
        const outcome = await notifyAccount(ctx, row, signal);
        if (outcome.state === 'sent' || outcome.state === 'failed') {
          attempts++;
          if (outcome.state === 'failed') failed++;
          const g = input.guard;
          if (g && g.failureRate < 1 && attempts >= g.minAttempts && failed / attempts > g.failureRate) {
            tripped ??= ApplicationFailure.nonRetryable(
              `notification failure rate ${((100 * failed) / attempts).toFixed(1)}% over ${attempts} attempts in batch ${first}..${last} exceeds ${(100 * g.failureRate).toFixed(1)}%`,
              'FailureThreshold',
              { attempts, failed },
            );
          }
        }
        return outcome;
      } catch (err) {
        if (err instanceof RunStoppingError) {
          // Cancelled while waiting for a slot: nothing was sent for this account; release it.
          tripped ??= ApplicationFailure.nonRetryable(err.message, 'RunStopping');
          return { accountId: row.accountId, state: 'pending', fellBack: false };
        }
        if (!(err instanceof ProviderConfigError)) {
          stopAttempt(err);
          throw err;
        }
        tripped ??= ApplicationFailure.nonRetryable(err.message, 'ProviderConfig', { channel: err.channel, code: err.code });
        return { accountId: row.accountId, state: 'pending', fellBack: false };
      }
    };
    const beat = setInterval(() => heartbeat({ cursor } satisfies NotifyProgress), HEARTBEAT_EVERY_MS);
    try {
      for (;;) {
        const rows = await claimNotifyChunk(deps.db, runId, cursor, last, CHUNK);
        if (rows.length === 0) break;
        // allSettled, not all: the attempt may only fail once none of its sends can still go out.
        const settled = await Promise.allSettled(rows.map((row) => sendLimit(() => guarded(row))));
        const outcomes = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failure) {
          // Keep what did settle (fewer accounts to reconcile on the retry); the rest stays
          // 'sending' and the retry reconciles it before sending anything.
          await recordOutcomes(deps.db, runId, outcomes).catch(() => undefined);
          throw failure.reason;
        }
        await recordOutcomes(deps.db, runId, outcomes);
        if (tripped) throw tripped;
        cursor = rows[rows.length - 1].accountId;
        heartbeat({ cursor } satisfies NotifyProgress);
      }
    } finally {
      clearInterval(beat);
    }
    return readCounts(deps.db, runId, { first, last });
  };
}
