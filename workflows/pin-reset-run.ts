// One PIN-reset run: freeze the cohort, invalidate every PIN at database speed, then notify every
// customer at the provider rate, batch by batch in sliding windows. Deterministic and free of
// I/O; it carries only ids, ranges and counts. Activities are idempotent, so a batch dispatched
// twice (after a crash or continue-as-new) changes nothing the first dispatch already did.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PlannedBatch } from '../db/sql/plan-batches';
import { DEFAULT_DELIVERY, failureRate, PAUSE_FAILURE_TYPES, rateProblems, trimWindow, type RunParams } from '../domain/run';
import { zeroCounts, type BatchRange, type Counts } from '../domain/types';
import {
  approveSignal, cancelSignal, pauseSignal, progressQuery, resumeSignal, setRateUpdate,
  type CarriedState, type Phase, type Progress, type RunInput, type RunResult,
} from './api';
import { progressMarkdown } from './progress-markdown';
import { OPERATOR, PAUSED, PHASE, REASON, RUN_ID } from './search-attributes';

/** Database-only steps: retried until the database answers (an outage stalls, never fails, a run). */
const DB_RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;

// Heartbeats (activities/keepalive.ts) let a killed worker's activity be retried in seconds, not minutes.
const lifecycle = wf.proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: '15s', retry: DB_RETRY });

/** Delivery follow-up sweeps (issue 11): short, retried like the other database steps. */
const deliveryActs = wf.proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: '15s', retry: DB_RETRY, summary: 'follow up delivery receipts' });
/** A sweep of the receipts at most this often, while notifications go out and after. */
const FOLLOW_UP_EVERY_MS = 5_000;

/** Batches planned per planning call. */
const PLAN_PAGE = 200;
/** Persist a checkpoint at most this often (only when something changed). */
const CHECKPOINT_EVERY_MS = 5_000;

type Batch = PlannedBatch;

function batchActivities(kind: 'reset' | 'notify', b: BatchRange) {
  // Deterministic ids: the same batch always has the same activity id, in every run of the chain.
  const activityId = `${kind}-${b.first}-${b.last}`;
  return kind === 'reset'
    ? wf.proxyActivities<Activities>({ activityId, startToCloseTimeout: '5 minutes', heartbeatTimeout: '15s', retry: DB_RETRY, summary: `reset PINs of accounts ${b.first}..${b.last}` })
    : wf.proxyActivities<Activities>({
        activityId,
        // Long at low rates; a dead worker is noticed by the heartbeat timeout instead.
        startToCloseTimeout: '4 hours',
        heartbeatTimeout: '15s',
        retry: DB_RETRY,
        summary: `notify accounts ${b.first}..${b.last}`,
      });
}

function freshState(params: RunParams, nowMs: number): CarriedState {
  return {
    planned: 0, planCursor: 0, planningDone: false, toReset: [], toNotify: [],
    batchesPlanned: 0, batchesReset: 0, batchesNotified: 0, counts: zeroCounts(),
    paused: false, autoPaused: false, canary: params.canary > 0 ? 'pending' : 'none', recent: [],
    ratePerSecond: params.ratePerSecond, startedAtMs: nowMs, pausedTotalMs: 0, checkpointSeq: 0, continuedAsNew: 0,
  };
}

/** The activity stopped its batch and asks for the run to pause (see PAUSE_FAILURE_TYPES). */
function pauseRequest(err: unknown): string | undefined {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  if (cause instanceof wf.ApplicationFailure && (PAUSE_FAILURE_TYPES as readonly string[]).includes(cause.type ?? '')) {
    return `auto-paused: ${cause.message}`;
  }
  return undefined;
}

function settled(c: Counts): number {
  return c.skipped + c.sentSms + c.sentEmail + c.unreachable + c.failed + c.notifySkipped;
}

export async function pinResetRun(input: RunInput): Promise<RunResult> {
  const { runId, params } = input;
  const s: CarriedState = input.carried ?? freshState(params, Date.now());
  let phase: Phase = input.carried ? (s.resetsDoneAtMs !== undefined ? 'notifying' : 'resetting') : 'preparing';
  let cancelRequested = false;
  let cancelReason: string | undefined;
  let version = 0;
  const bump = () => void version++;
  let failure: unknown;
  const inFlight = { reset: new Map<string, Promise<void>>(), notify: new Map<string, Promise<void>>() };
  const background = new Set<Promise<unknown>>();
  let lastCheckpointMs = 0;
  let settledSinceCheckpoint = false;
  let statusInDb: 'running' | 'paused' = 'running';

  const progress = (): Progress => ({
    runId, phase, counts: { ...s.counts, pending: Math.max(0, s.counts.planned - settled(s.counts)) },
    paused: s.paused, pauseReason: s.pauseReason, autoPaused: s.autoPaused, cancelRequested,
    awaitingApproval: s.canary === 'waiting', ratePerSecond: s.ratePerSecond,
    batches: { planned: s.batchesPlanned, reset: s.batchesReset, notified: s.batchesNotified, inFlight: inFlight.reset.size + inFlight.notify.size },
    startedAtMs: s.startedAtMs, pausedMs: s.pausedTotalMs + (s.pausedSinceMs !== undefined ? Date.now() - s.pausedSinceMs : 0),
    resetsDoneAtMs: s.resetsDoneAtMs, exposureWindowMs: s.exposureWindowMs, continuedAsNew: s.continuedAsNew,
  });

  wf.setHandler(progressQuery, progress, { description: 'Live progress: counts by outcome, batches, rate, pause state, exposure window.' });
  wf.setHandler(pauseSignal, (arg) => {
    s.paused = true;
    s.pausedSinceMs ??= Date.now();
    s.pauseReason = arg?.reason ?? 'paused by operator';
    bump();
  }, { description: 'Dispatch no new batches; batches in flight finish. Optional { reason }.' });
  wf.setHandler(resumeSignal, () => {
    s.paused = false;
    s.pauseReason = undefined;
    s.autoPaused = false;
    if (s.pausedSinceMs !== undefined) s.pausedTotalMs += Date.now() - s.pausedSinceMs;
    s.pausedSinceMs = undefined;
    // The operator has looked at the failures: judge the failure rate afresh from here.
    s.recent = [];
    s.deliveryJudgeFromMs = Date.now();
    bump();
  }, { description: 'Resume dispatching batches after a pause (also after an auto-pause).' });
  wf.setHandler(approveSignal, () => {
    if (s.canary === 'waiting' || s.canary === 'pending') s.canary = 'approved';
    bump();
  }, { description: 'Approve the rest of the run after the canary accounts were processed.' });
  wf.setHandler(cancelSignal, (arg) => {
    cancelRequested = true;
    cancelReason = arg?.reason ?? 'cancelled by operator';
    bump();
  }, { description: 'Stop gracefully: no new batches, batches in flight finish, the run records where it stopped.' });
  wf.setHandler(setRateUpdate, async (rate) => {
    const previous = s.ratePerSecond;
    await lifecycle.setSendRate({ runId, ratePerSecond: rate });
    s.ratePerSecond = rate;
    bump();
    return { previous, current: rate };
  }, {
    description: "Change the run's notification ceiling (messages/s for all workers together, or \"unlimited\"; 0 is refused: pause to stop). Takes effect within a second.",
    validator: (rate) => {
      const problems = rateProblems(rate);
      if (problems.length) throw new Error(problems.join('; '));
    },
  });

  const showDetails = () => wf.setCurrentDetails(progressMarkdown(progress(), Date.now()));
  const setPhase = (next: Phase) => {
    phase = next;
    wf.upsertSearchAttributes([{ key: PHASE, value: next }]);
  };

  const track = (kind: 'reset' | 'notify', key: string, p: Promise<void>) => {
    const wrapped = p.catch((err) => {
      failure ??= err;
    }).finally(() => {
      settledSinceCheckpoint = true;
      inFlight[kind].delete(key);
      bump();
    });
    inFlight[kind].set(key, wrapped);
  };

  const dispatchReset = (b: Batch) => {
    // Not cancellable: a cancelled run still lets the batches in flight finish cleanly.
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('reset', b).resetBatch({ runId, first: b.first, last: b.last, size: b.size, reason: input.reason }),
    ).then((c) => {
      s.counts.reset += c.reset;
      s.counts.skipped += c.skipped;
      s.batchesReset++;
      if (c.reset > 0) s.toNotify.push(b);
      else s.batchesNotified++;
    });
    track('reset', `${b.first}`, p);
  };

  const autoPause = (reason: string) => {
    s.paused = true;
    s.pausedSinceMs ??= Date.now();
    s.autoPaused = true;
    s.pauseReason = reason;
    wf.log.warn('run auto-paused', { runId, reason });
  };

  const guard = { failureRate: params.autoPauseFailureRate, minAttempts: Math.min(100, params.autoPauseWindow) };
  const dispatchNotify = (b: Batch) => {
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('notify', b).notifyBatch({ runId, first: b.first, last: b.last, policy: params.policy, guard }),
    ).then((c) => {
      s.counts.sentSms += c.sentSms;
      s.counts.sentEmail += c.sentEmail;
      s.counts.fellBack += c.fellBack;
      s.counts.unreachable += c.unreachable;
      s.counts.failed += c.failed;
      s.counts.notifySkipped += c.notifySkipped;
      s.batchesNotified++;
      if (s.canary === 'pending' && b.last <= s.canaryLast!) s.canary = 'waiting';
      s.recent = trimWindow([...s.recent, { attempts: c.sentSms + c.sentEmail + c.failed, failed: c.failed }], params.autoPauseWindow);
      const rate = failureRate(s.recent, guard.minAttempts);
      if (rate !== undefined && params.autoPauseFailureRate < 1 && rate > params.autoPauseFailureRate && !s.paused) {
        autoPause(`auto-paused: ${(100 * rate).toFixed(1)}% of the last ${s.recent.reduce((n, r) => n + r.attempts, 0)} notification attempts failed (threshold ${(100 * params.autoPauseFailureRate).toFixed(1)}%)`);
      }
    }, (err) => {
      // Cancelled while its sends waited for slots: what it sent is recorded, the rest is pending.
      if (cancelRequested && err instanceof wf.ActivityFailure && err.cause instanceof wf.ApplicationFailure && err.cause.type === 'RunStopping') return;
      const reason = pauseRequest(err);
      if (!reason) throw err;
      // The batch stopped itself: what it sent is recorded; the rest goes back in line.
      s.toNotify.unshift(b);
      autoPause(reason);
    });
    track('notify', `${b.first}`, p);
  };

  // Delivery follow-up: sweeps while notifications go out, then a bounded phase after the last
  // send, until every SMS has a final receipt or is past the deadline (the sweep records those
  // 'unknown'). Receipts come minutes after a send, and 30007/30001 must pause the run while it
  // still sends; so sweeps run beside the batches, not only at the end.
  const followUp = { inFlight: false, lastMs: 0, enabled: true };
  const dispatchFollowUp = (sendsDone: boolean) => {
    followUp.inFlight = true;
    const p = wf.CancellationScope.nonCancellable(() =>
      deliveryActs.followUpDeliveries({
        runId, policy: params.policy, delivery: { ...DEFAULT_DELIVERY, ...params.delivery }, sendsDone,
        judgeFromMs: s.deliveryJudgeFromMs ?? s.startedAtMs, ratePerSecond: s.ratePerSecond,
      }),
    ).then((r) => {
      s.counts.delivery = r.counts;
      followUp.enabled = r.enabled;
      if (r.done) s.deliveryDone = true;
      if (r.pauseReason && !s.paused) autoPause(r.pauseReason);
    }, (err) => {
      failure ??= err;
    }).finally(() => {
      followUp.inFlight = false;
      followUp.lastMs = Date.now();
      bump();
    });
    background.add(p);
    void p.finally(() => background.delete(p));
  };

  const checkpoint = (note?: string) => {
    lastCheckpointMs = Date.now();
    settledSinceCheckpoint = false;
    const seq = ++s.checkpointSeq;
    const p = wf.CancellationScope.nonCancellable(() =>
      lifecycle.saveCheckpoint({ runId, seq, phase, counts: progress().counts, note }),
    );
    background.add(p);
    void p.finally(() => background.delete(p));
    return p;
  };

  const drain = async () => {
    await wf.condition(() => inFlight.reset.size === 0 && inFlight.notify.size === 0);
    await Promise.all([...background]);
  };

  const syncPauseStatus = async () => {
    const want = s.paused ? 'paused' : 'running';
    if (want === statusInDb) return;
    statusInDb = want;
    // Operators can list every paused run: PinresetPaused = true.
    wf.upsertSearchAttributes([{ key: PAUSED, value: s.paused }]);
    await lifecycle.setRunStatus({ runId, status: want, reason: s.paused ? s.pauseReason : undefined });
    checkpoint(s.paused ? `paused: ${s.pauseReason}` : 'resumed');
  };

  let stopMarked = false;
  try {
    if (!input.carried) {
      wf.upsertSearchAttributes([
        { key: RUN_ID, value: runId }, { key: PHASE, value: phase },
        { key: REASON, value: input.reason }, { key: OPERATOR, value: input.operator }, { key: PAUSED, value: false },
      ]);
      showDetails();
      const { planned } = await lifecycle.prepareRun({ runId });
      s.planned = planned;
      s.counts.planned = planned;
      if (s.ratePerSecond !== params.ratePerSecond) await lifecycle.setSendRate({ runId, ratePerSecond: s.ratePerSecond });
      setPhase('resetting');
      checkpoint('cohort frozen');
    } else {
      statusInDb = s.paused ? 'paused' : 'running';
    }

    for (;;) {
      if (failure) throw failure;
      await syncPauseStatus();
      if (cancelRequested && !stopMarked) {
        stopMarked = true;
        await lifecycle.markRunStopping({ runId });
      }
      if (!cancelRequested && !s.paused) {
        if (s.canary === 'pending' && s.canaryLast === undefined) {
          // The canary is one batch of exactly the first N accounts.
          const [canary] = await lifecycle.planBatches({ runId, after: 0, batchSize: params.canary, max: 1 });
          s.canaryLast = canary?.last ?? 0;
          if (canary) {
            s.toReset.push(canary);
            s.batchesPlanned++;
            s.planCursor = canary.last;
          } else s.planningDone = true;
          setPhase('canary');
        }
        const gated = s.canary === 'pending' || s.canary === 'waiting';
        if (!gated && !s.planningDone && s.toReset.length < params.resetConcurrency * 2) {
          const next = await lifecycle.planBatches({ runId, after: s.planCursor, batchSize: params.batchSize, max: PLAN_PAGE });
          s.toReset.push(...next);
          s.batchesPlanned += next.length;
          if (next.length > 0) s.planCursor = next[next.length - 1].last;
          if (next.length < PLAN_PAGE) s.planningDone = true;
        }
        while (inFlight.reset.size < params.resetConcurrency && s.toReset.length) dispatchReset(s.toReset.shift() as Batch);
        // Resets first, at database speed: notifications would compete with them for the worker
        // and the database, and the exposure window is what counts. The canary is the exception.
        const notifyOpen = s.resetsDoneAtMs !== undefined || s.canary === 'pending';
        while (notifyOpen && inFlight.notify.size < params.batchConcurrency && s.toNotify.length) dispatchNotify(s.toNotify.shift() as Batch);
      }

      if (s.canary === 'waiting' && (phase as Phase) !== 'awaiting_approval') {
        setPhase('awaiting_approval');
        checkpoint('canary done: waiting for approval');
      }
      if (s.canary === 'approved' && ['canary', 'awaiting_approval'].includes(phase as Phase)) setPhase('resetting');
      const resetsDone = s.planningDone && s.toReset.length === 0 && inFlight.reset.size === 0;
      if (resetsDone && s.resetsDoneAtMs === undefined) {
        const { exposureWindowMs } = await lifecycle.markResetsDone({ runId });
        s.resetsDoneAtMs = Date.now();
        s.exposureWindowMs = exposureWindowMs;
        setPhase('notifying');
        checkpoint('every PIN of the cohort invalidated');
        continue; // notifications open now: dispatch them before waiting
      }
      const idle = inFlight.reset.size === 0 && inFlight.notify.size === 0;
      const sendsDone = resetsDone && s.toNotify.length === 0 && inFlight.notify.size === 0;
      const following = !cancelRequested && !s.deliveryDone && (inFlight.notify.size > 0 || sendsDone);
      if (following && !followUp.inFlight && Date.now() - followUp.lastMs >= FOLLOW_UP_EVERY_MS) dispatchFollowUp(sendsDone);
      if (sendsDone && !s.deliveryDone && followUp.enabled && (phase as Phase) !== 'confirming_delivery') setPhase('confirming_delivery');
      if (idle && (cancelRequested || (sendsDone && s.deliveryDone && !followUp.inFlight))) break;

      // Also when the run goes idle (paused, awaiting approval): the last checkpoint then holds
      // exactly what a status read without a worker should show.
      if (Date.now() - lastCheckpointMs >= CHECKPOINT_EVERY_MS || (idle && settledSinceCheckpoint)) checkpoint();
      showDetails();

      if (wf.workflowInfo().continueAsNewSuggested && !cancelRequested) {
        // Hand over before history limits: finish what is in flight, then start afresh with the state.
        setPhase('draining');
        await drain();
        await wf.condition(wf.allHandlersFinished);
        s.continuedAsNew++;
        await wf.continueAsNew<typeof pinResetRun>({ ...input, carried: s });
      }
      const seen = version;
      if (following) await wf.condition(() => version !== seen, FOLLOW_UP_EVERY_MS);
      else await wf.condition(() => version !== seen);
    }
  } catch (err) {
    if (!wf.isCancellation(err)) throw err;
    // Cancelled from Temporal: stop as gracefully as a cancel signal would.
    cancelRequested = true;
    cancelReason ??= 'workflow cancelled';
  }

  return wf.CancellationScope.nonCancellable(async () => {
    if (cancelRequested && !stopMarked) await lifecycle.markRunStopping({ runId });
    await drain();
    const status = cancelRequested ? 'cancelled' : 'completed';
    s.counts = { ...(await lifecycle.readRunCounts({ runId })), delivery: s.counts.delivery };
    setPhase(status);
    // The final checkpoint first: whoever sees the run finished also sees its final counts.
    await checkpoint(cancelRequested ? `cancelled: ${cancelReason}` : 'run complete');
    await lifecycle.setRunStatus({ runId, status, reason: cancelReason });
    await wf.condition(wf.allHandlersFinished);
    showDetails();
    return {
      runId, status, counts: s.counts, exposureWindowMs: s.exposureWindowMs,
      wallTimeMs: Date.now() - s.startedAtMs, continuedAsNew: s.continuedAsNew,
    };
  });
}
