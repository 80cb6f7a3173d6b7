// One PIN-reset run: freeze the cohort, invalidate every PIN at database speed, then notify every
// customer at the provider rate, batch by batch in sliding windows. Deterministic and free of
// I/O; it carries only ids, ranges and counts. Activities are idempotent, so a batch dispatched
// twice (after a crash or continue-as-new) changes nothing the first dispatch already did.
import { RetryState } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PlannedBatch } from '../db/sql/plan-batches';
import type { ControlStatus } from '../db/sql/record-run-control';
import { DEFAULT_DELIVERY, DEFAULT_PARAMS, failureRate, PAUSE_FAILURE_TYPES, rateProblems, RUN_STOPPED_FAILURE, trimWindow, type RunParams } from '../domain/run';
import { zeroCounts, type BatchRange, type Counts } from '../domain/types';
import {
  approveUpdate, cancelSignal, pauseSignal, progressQuery, resumeSignal, setRateUpdate,
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
/**
 * Read the ledger's live progress (and save it as a checkpoint) this often while batches are in
 * flight: counts, rate and ETA then move with the ledger, not per finished batch. Each reading is
 * a timer and an activity (~11 history events), so a long run continues as new about every 30 min.
 */
const CHECKPOINT_EVERY_MS = 5_000;

type Batch = PlannedBatch;

function batchActivities(kind: 'reset' | 'notify', b: BatchRange, dbStallSeconds: number) {
  // Deterministic ids: the same batch always has the same activity id, in every run of the chain.
  const activityId = `${kind}-${b.first}-${b.last}`;
  return kind === 'reset'
    ? wf.proxyActivities<Activities>({
        activityId, startToCloseTimeout: '5 minutes', heartbeatTimeout: '15s', retry: DB_RETRY, summary: `reset PINs of accounts ${b.first}..${b.last}`,
        // A reset is a database step: one that keeps failing pauses the run (dbStallReason).
        scheduleToCloseTimeout: `${dbStallSeconds}s`,
      })
    : wf.proxyActivities<Activities>({
        activityId,
        // Long at low rates; a dead worker is noticed by the heartbeat timeout instead.
        startToCloseTimeout: '4 hours',
        heartbeatTimeout: '15s',
        retry: DB_RETRY,
        summary: b.first === 0 && b.last === Number.MAX_SAFE_INTEGER ? 'settle parked (ambiguous) notifications of the run' : `notify accounts ${b.first}..${b.last}`,
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

/** The batch stopped because the run was paused or cancelled: what it did not send is back in line. */
function stoppedByRun(err: unknown): boolean {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  return cause instanceof wf.ApplicationFailure && cause.type === RUN_STOPPED_FAILURE;
}

/** The activity stopped its batch and asks for the run to pause (see PAUSE_FAILURE_TYPES). */
function pauseRequest(err: unknown): { reason: string; details?: { attempts?: number; failed?: number } } | undefined {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  if (cause instanceof wf.ApplicationFailure && (PAUSE_FAILURE_TYPES as readonly string[]).includes(cause.type ?? '')) {
    return { reason: `auto-paused: ${cause.message}`, details: cause.type === 'FailureThreshold' ? (cause.details?.[0] as { attempts?: number; failed?: number }) : undefined };
  }
  return undefined;
}

/**
 * A database step that kept failing for the run's dbStallPauseSeconds (its schedule-to-close
 * timeout): the reason, with the last error, for pausing the run. Undefined for other failures.
 */
function dbStallReason(step: string, seconds: number, err: unknown): string | undefined {
  // Out of time either during an attempt (a TimeoutFailure) or between them (the last attempt's
  // failure, with retry state TIMEOUT).
  if (!(err instanceof wf.ActivityFailure)) return undefined;
  if (!(err.cause instanceof wf.TimeoutFailure) && err.retryState !== RetryState.TIMEOUT) return undefined;
  let last: unknown = err.cause;
  while (last instanceof wf.TimeoutFailure && last.cause) last = last.cause;
  const why = last instanceof Error ? last.message : err.message;
  return `auto-paused: database step ${step} kept failing for ${seconds} s (${(why || 'timed out').replace(/\s+/g, ' ').slice(0, 200)}); check PostgreSQL, then resume`;
}

/** One line for a failure, for runs.status_reason (never customer data: messages carry ids and codes). */
function failureLine(err: unknown): string {
  let e: unknown = err;
  const parts: string[] = [];
  while (e instanceof Error && parts.length < 3) {
    if (e.message) parts.push(e.message.replace(/\s+/g, ' '));
    e = (e as { cause?: unknown }).cause;
  }
  return `workflow failed: ${parts.join(': ') || String(err)}`.slice(0, 500);
}

function settled(c: Counts): number {
  return c.skipped + c.sentSms + c.sentEmail + c.unreachable + c.failed + c.notifySkipped + (c.ambiguous ?? 0);
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
  let pausedSeen = false;
  let finishedAtMs: number | undefined;
  let failedReason: string | undefined;
  let ended = false;
  const stallSeconds = params.dbStallPauseSeconds ?? DEFAULT_PARAMS.dbStallPauseSeconds!;
  // Database-only steps, bounded: one failing for stallSeconds pauses the run (dbStep) instead of
  // retrying silently. Controls and the final status stay unbounded: they must land eventually.
  const dbSteps = wf.proxyActivities<Activities>({
    startToCloseTimeout: '5 minutes', heartbeatTimeout: '15s', scheduleToCloseTimeout: `${stallSeconds}s`, retry: DB_RETRY,
  });

  /**
   * The freshest counts: the ledger's latest reading, or the finished batches' totals when those
   * are newer (a batch that just finished). Both only move forward.
   */
  const shownCounts = (): Counts => {
    const batches = { ...s.counts, pending: Math.max(0, s.counts.planned - settled(s.counts)) };
    const live = s.live?.counts;
    return live && settled(live) + live.reset >= settled(batches) + batches.reset ? live : batches;
  };
  const progress = (): Progress => ({
    runId, phase, counts: shownCounts(),
    paused: s.paused, pauseReason: s.pauseReason, autoPaused: s.autoPaused, cancelRequested,
    awaitingApproval: s.canary === 'waiting', ratePerSecond: s.ratePerSecond,
    batches: { planned: s.batchesPlanned, reset: s.batchesReset, notified: s.batchesNotified, inFlight: inFlight.reset.size + inFlight.notify.size },
    live: s.live, cohort: params.cohort, canary: params.canary, approval: s.approval, autoPause: s.autoPause,
    sendingSinceMs: s.sendingSinceMs, finishedAtMs, endReason: failedReason ?? cancelReason,
    startedAtMs: s.startedAtMs, pausedMs: s.pausedTotalMs + (s.pausedSinceMs !== undefined ? (finishedAtMs ?? Date.now()) - s.pausedSinceMs : 0),
    resetsDoneAtMs: s.resetsDoneAtMs, exposureWindowMs: s.exposureWindowMs, continuedAsNew: s.continuedAsNew,
  });

  /**
   * Writes pause / resume / cancel to runs.status at once, from the handler itself: every worker's
   * send path reads it (readRunStop) and stops before its next provider call, without waiting
   * for its batch to end. Ordered by seq; drain() waits for it.
   */
  const recordControl = (status: ControlStatus, reason?: string) => {
    const seq = (s.controlSeq = (s.controlSeq ?? 0) + 1);
    const p = wf.CancellationScope.nonCancellable(() => lifecycle.recordRunControl({ runId, seq, status, reason }));
    background.add(p);
    void p.finally(() => background.delete(p));
  };

  wf.setHandler(progressQuery, progress, { description: 'Live progress: counts by outcome, batches, rate, pause state, exposure window.' });
  wf.setHandler(pauseSignal, (arg) => {
    s.paused = true;
    s.pausedSinceMs ??= Date.now();
    s.pauseReason = arg?.reason ?? 'paused by operator';
    if (!cancelRequested && finishedAtMs === undefined) recordControl('paused', s.pauseReason);
    bump();
  }, { description: 'Stop sending within seconds: no new batches, and the batches in flight stop before their next message (claimed, unsent accounts go back in line). Optional { reason }.' });
  wf.setHandler(resumeSignal, () => {
    if (!s.paused || cancelRequested || finishedAtMs !== undefined) return; // nothing to resume (the CLI says so)
    recordControl('running');
    s.sendingSinceMs = Date.now();
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
  wf.setHandler(approveUpdate, async (arg) => {
    if (s.approval) return { ...s.approval, already: true };
    s.approval = { by: arg.by.trim(), atMs: Date.now() };
    s.canary = 'approved';
    s.sendingSinceMs = Date.now();
    bump();
    // The database keeps the first approval; answer with what it holds.
    const recorded = await wf.CancellationScope.nonCancellable(() => lifecycle.recordApproval({ runId, by: s.approval!.by }));
    s.approval = recorded;
    return { ...recorded, already: false };
  }, {
    description: 'Approve the notifications after the canary: { "by": "<who>" }. Refused until the canary accounts are notified; a second approval answers with the first.',
    validator: (arg) => {
      if (!arg || typeof arg.by !== 'string' || !arg.by.trim()) throw new Error('approve needs { "by": "<who approves>" }');
      if (s.approval) return; // idempotent: answered by the handler
      if (cancelRequested || finishedAtMs !== undefined) throw new Error('the run is cancelled or over: nothing to approve');
      if (s.canary === 'none') throw new Error('this run has no canary: nothing to approve');
      if (s.canary === 'pending') throw new Error(`the canary is not done yet: the first ${params.canary} accounts are still being notified; approve once status says AWAITING APPROVAL`);
    },
  });
  wf.setHandler(cancelSignal, (arg) => {
    if (cancelRequested || finishedAtMs !== undefined) return;
    cancelRequested = true;
    cancelReason = arg?.reason ?? 'cancelled by operator';
    recordControl('cancelling', cancelReason);
    bump();
  }, { description: 'Cancel: sending stops within seconds (as pause), nothing new starts, the run ends cancelled and records where it stopped.' });
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

  const autoPause = (reason: string) => {
    if (s.paused && s.autoPaused) return; // already paused itself: the first reason stands
    if (!s.paused && !cancelRequested) recordControl('paused', reason);
    s.paused = true;
    s.pausedSinceMs ??= Date.now();
    s.autoPaused = true;
    s.pauseReason = reason;
    wf.log.warn('run auto-paused', { runId, reason });
  };

  /** Runs a bounded database step; one that kept failing pauses the run and gives undefined. */
  const dbStep = async <T>(step: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      const reason = dbStallReason(step, stallSeconds, err);
      if (!reason) throw err;
      autoPause(reason);
      return undefined;
    }
  };

  const dispatchReset = (b: Batch) => {
    // Not cancellable: a cancelled run still lets the batches in flight finish cleanly.
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('reset', b, stallSeconds).resetBatch({ runId, first: b.first, last: b.last, size: b.size, reason: input.reason }),
    ).then((c) => {
      s.counts.reset += c.reset;
      s.counts.skipped += c.skipped;
      s.batchesReset++;
      // Cursor mode: the notify batches are planned from the ledger later; only the canary's is queued here.
      if (s.notifyCursor !== undefined && !(s.canary !== 'none' && b.last <= (s.canaryLast ?? -1))) return;
      if (c.reset > 0) s.toNotify.push(b);
      else {
        s.batchesNotified++;
        // A canary whose accounts were all closed since: nothing to notify, it is done.
        if (s.canary === 'pending' && b.last <= s.canaryLast!) s.canary = 'waiting';
      }
    }, (err) => {
      const reason = dbStallReason('resetBatch', stallSeconds, err);
      if (!reason) throw err;
      s.toReset.unshift(b); // done again after resume: the reset is idempotent
      autoPause(reason);
    });
    track('reset', `${b.first}`, p);
  };

  const guard = { failureRate: params.autoPauseFailureRate, minAttempts: Math.min(100, params.autoPauseWindow) };
  const dispatchNotify = (b: Batch) => {
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('notify', b, stallSeconds).notifyBatch({ runId, first: b.first, last: b.last, policy: params.policy, guard }),
    ).then((c) => {
      s.counts.sentSms += c.sentSms;
      s.counts.sentEmail += c.sentEmail;
      s.counts.fellBack += c.fellBack;
      s.counts.unreachable += c.unreachable;
      s.counts.failed += c.failed;
      s.counts.notifySkipped += c.notifySkipped;
      s.counts.ambiguous = (s.counts.ambiguous ?? 0) + c.ambiguous;
      s.batchesNotified++;
      if (s.canary === 'pending' && b.last <= s.canaryLast!) s.canary = 'waiting';
      s.recent = trimWindow([...s.recent, { attempts: c.sentSms + c.sentEmail + c.failed, failed: c.failed }], params.autoPauseWindow);
      const rate = failureRate(s.recent, guard.minAttempts);
      if (rate !== undefined && params.autoPauseFailureRate < 1 && rate > params.autoPauseFailureRate && !s.paused) {
        const attempts = s.recent.reduce((n, r) => n + r.attempts, 0);
        const failed = s.recent.reduce((n, r) => n + r.failed, 0);
        s.autoPause = { attempts, failed, batch: { first: b.first, last: b.last } };
        autoPause(`auto-paused: ${(100 * rate).toFixed(1)}% of the last ${attempts} notification attempts failed (${failed} failed; threshold ${(100 * params.autoPauseFailureRate).toFixed(1)}%)`);
      }
    }, (err) => {
      if (stoppedByRun(err)) {
        s.toNotify.unshift(b);
        return;
      }
      // Cancelled while its sends waited for slots: what it sent is recorded, the rest is pending.
      if (cancelRequested && err instanceof wf.ActivityFailure && err.cause instanceof wf.ApplicationFailure && err.cause.type === 'RunStopping') return;
      const request = pauseRequest(err);
      if (!request) throw err;
      // The batch stopped itself: what it sent is recorded (the ledger counts show it); the rest goes back in line.
      s.toNotify.unshift(b);
      if (request.details?.attempts !== undefined) {
        s.autoPause = { attempts: request.details.attempts, failed: request.details.failed ?? 0, batch: { first: b.first, last: b.last } };
      }
      autoPause(request.reason);
    });
    track('notify', `${b.first}`, p);
  };

  // After the last batch: parked notifications (ambiguous sends, rows of dead holders) are settled
  // over the whole run, waiting out their hold periods, so no batch ever held the window for them.
  const dispatchReconcile = () => {
    const all = { first: 0, last: Number.MAX_SAFE_INTEGER };
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('notify', all, stallSeconds).notifyBatch({ runId, ...all, policy: params.policy, settleParked: true }),
    ).then(() => {
      s.parkedSettled = true;
    }, (err) => {
      // Paused or cancelled meanwhile: dispatched again after a resume; a cancel ends the run.
      if (!stoppedByRun(err)) throw err;
    });
    track('notify', 'reconcile', p);
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

  /** Reads the ledger's live progress and saves it as a checkpoint; the details show the reading. */
  const checkpoint = (note?: string, final = false) => {
    lastCheckpointMs = Date.now();
    settledSinceCheckpoint = false;
    const seq = ++s.checkpointSeq;
    const args = { runId, seq, phase, note };
    const p = wf.CancellationScope.nonCancellable(() => (final ? lifecycle : dbSteps).checkpointProgress(args)).then((live) => {
      lastCheckpointMs = Date.now();
      if (!s.live || live.readAtMs >= s.live.readAtMs) s.live = live;
      bump();
    }, (err) => {
      const reason = dbStallReason('checkpointProgress', stallSeconds, err);
      if (!reason) throw err;
      autoPause(reason);
      bump();
    });
    background.add(p);
    void p.finally(() => background.delete(p));
    return p;
  };

  // While batches are in flight, read the ledger every CHECKPOINT_EVERY_MS (a timer and an
  // activity each), one reading at a time, and no more than a quarter of the time: a reading of a
  // large ledger on a busy database takes seconds (850,000 rows: 2-7 s on a loaded 2-core box).
  // Idle runs (paused, awaiting approval) add nothing to their history.
  const busy = () => inFlight.reset.size + inFlight.notify.size > 0;
  let lastReadingMs = 0;
  // Not cancellable: a run cancelled from Temporal keeps reading while its batches drain.
  void wf.CancellationScope.nonCancellable(async () => {
    for (;;) {
      await wf.condition(() => ended || busy());
      if (ended) return;
      await wf.sleep(Math.max(CHECKPOINT_EVERY_MS, 3 * lastReadingMs));
      if (ended) return;
      if (Date.now() - lastCheckpointMs >= CHECKPOINT_EVERY_MS - 500) {
        const t0 = Date.now();
        await checkpoint().catch(() => undefined);
        lastReadingMs = Date.now() - t0;
      }
    }
  }).catch(() => undefined);

  const drain = async () => {
    await wf.condition(() => inFlight.reset.size === 0 && inFlight.notify.size === 0);
    await Promise.all([...background]);
  };

  // runs.status itself is written by the handlers (recordControl), at once.
  const syncPauseStatus = () => {
    if (s.paused === pausedSeen) return;
    pausedSeen = s.paused;
    // Operators can list every paused run: PinresetPaused = true.
    wf.upsertSearchAttributes([{ key: PAUSED, value: s.paused }]);
    checkpoint(s.paused ? `paused: ${s.pauseReason}` : 'resumed');
  };

  let stopMarked = false;
  try {
    if (!input.carried) {
      if (wf.patched('notify-cursor')) s.notifyCursor = 0;
      wf.upsertSearchAttributes([
        { key: RUN_ID, value: runId }, { key: PHASE, value: phase },
        { key: REASON, value: input.reason }, { key: OPERATOR, value: input.operator }, { key: PAUSED, value: false },
      ]);
      showDetails();
      s.sendingSinceMs = Date.now();
      // Until the cohort is frozen nothing else can happen: a failing database pauses here too.
      for (;;) {
        const prepared = await dbStep('prepareRun', () => dbSteps.prepareRun({ runId }));
        // A large cohort is frozen over several calls (each at most a minute): call again.
        if (prepared?.frozen === false) continue;
        if (prepared) {
          s.planned = prepared.planned;
          s.counts.planned = prepared.planned;
          break;
        }
        syncPauseStatus();
        showDetails();
        await wf.condition(() => !s.paused || cancelRequested);
        if (cancelRequested) break;
      }
      if (s.ratePerSecond !== params.ratePerSecond) await lifecycle.setSendRate({ runId, ratePerSecond: s.ratePerSecond });
      setPhase(s.canary === 'pending' ? 'canary' : 'resetting');
      checkpoint('cohort frozen');
    } else {
      pausedSeen = s.paused;
    }

    for (;;) {
      if (failure) throw failure;
      syncPauseStatus();
      if (cancelRequested && !stopMarked) {
        stopMarked = true;
        await lifecycle.markRunStopping({ runId });
      }
      if (!cancelRequested && !s.paused) {
        if (s.canary === 'pending' && s.canaryLast === undefined) {
          // The canary is one batch of exactly the first N accounts: the first N notifications.
          const planned = await dbStep('planBatches', () => dbSteps.planBatches({ runId, after: 0, batchSize: params.canary, max: 1 }));
          if (!planned) continue;
          const [canary] = planned;
          s.canaryLast = canary?.last ?? 0;
          if (canary) {
            if (s.notifyCursor !== undefined) s.notifyCursor = canary.last;
            s.toReset.push(canary);
            s.batchesPlanned++;
            s.planCursor = canary.last;
          } else s.planningDone = true;
          setPhase('canary');
        }
        // The canary gates notifications, never resets: every PIN is invalidated at once.
        if (!s.planningDone && s.toReset.length < params.resetConcurrency * 2) {
          const next = await dbStep('planBatches', () => dbSteps.planBatches({ runId, after: s.planCursor, batchSize: params.batchSize, max: PLAN_PAGE }));
          if (!next) continue;
          s.toReset.push(...next);
          s.batchesPlanned += next.length;
          if (next.length > 0) s.planCursor = next[next.length - 1].last;
          if (next.length < PLAN_PAGE) s.planningDone = true;
        }
        while (inFlight.reset.size < params.resetConcurrency && s.toReset.length) dispatchReset(s.toReset.shift() as Batch);
        // Resets first, at database speed: notifications would compete with them for the worker
        // and the database, and the exposure window is what counts. The canary is the exception:
        // its batch is notified as soon as it is reset; the rest waits for `approve`.
        if (s.canary === 'pending') {
          const i = s.toNotify.findIndex((b) => b.last <= s.canaryLast!);
          if (i >= 0 && inFlight.notify.size < params.batchConcurrency) dispatchNotify(s.toNotify.splice(i, 1)[0] as Batch);
        } else if (s.canary !== 'waiting' && s.resetsDoneAtMs !== undefined) {
          // Cursor mode: a page of two windows, planned when less than one is queued.
          if (s.notifyCursor !== undefined && !s.notifyPlanningDone && s.toNotify.length < params.batchConcurrency) {
            const page = params.batchConcurrency * 2;
            const next = await dbStep('planBatches', () => dbSteps.planBatches({ runId, after: s.notifyCursor!, batchSize: params.batchSize, max: page }));
            if (!next) continue;
            s.toNotify.push(...next);
            if (next.length > 0) s.notifyCursor = next[next.length - 1].last;
            if (next.length < page) s.notifyPlanningDone = true;
          }
          while (inFlight.notify.size < params.batchConcurrency && s.toNotify.length) dispatchNotify(s.toNotify.shift() as Batch);
        }
      }

      if (s.canary === 'waiting' && (phase as Phase) !== 'awaiting_approval') {
        setPhase('awaiting_approval');
        checkpoint('canary done: waiting for approval');
      }
      if (s.canary === 'approved' && ['canary', 'awaiting_approval'].includes(phase as Phase)) {
        setPhase(s.resetsDoneAtMs !== undefined ? 'notifying' : 'resetting');
        checkpoint(`canary approved by ${s.approval?.by ?? 'an operator'}`);
      }
      const resetsDone = s.planningDone && s.toReset.length === 0 && inFlight.reset.size === 0;
      if (resetsDone && s.resetsDoneAtMs === undefined && !s.paused) {
        const marked = await dbStep('markResetsDone', () => dbSteps.markResetsDone({ runId }));
        if (!marked) continue;
        s.resetsDoneAtMs = Date.now();
        s.exposureWindowMs = marked.exposureWindowMs;
        if (s.canary !== 'pending' && s.canary !== 'waiting') setPhase('notifying');
        checkpoint('every PIN of the cohort invalidated');
        continue; // notifications open now: dispatch them before waiting
      }
      const idle = inFlight.reset.size === 0 && inFlight.notify.size === 0;
      const batchesDone = resetsDone && s.resetsDoneAtMs !== undefined && s.toNotify.length === 0 && (s.notifyCursor === undefined || s.notifyPlanningDone === true);
      if (idle && !cancelRequested && !s.paused && batchesDone && !s.parkedSettled) {
        if (wf.patched('settle-parked-at-end')) {
          dispatchReconcile();
          continue;
        }
        s.parkedSettled = true; // a run started before the final reconciliation existed ends without it
      }
      // Sends are done once the batches and the final reconciliation of parked rows are.
      const sendsDone = batchesDone && inFlight.notify.size === 0 && s.parkedSettled === true;
      const following = !cancelRequested && !s.deliveryDone && (inFlight.notify.size > 0 || sendsDone);
      if (following && !followUp.inFlight && Date.now() - followUp.lastMs >= FOLLOW_UP_EVERY_MS) dispatchFollowUp(sendsDone);
      if (sendsDone && !s.deliveryDone && followUp.enabled && (phase as Phase) !== 'confirming_delivery') setPhase('confirming_delivery');
      if (idle && (cancelRequested || (sendsDone && s.deliveryDone && !followUp.inFlight))) break;

      // Periodic readings come from the ticker above. One more when the run goes idle (paused,
      // awaiting approval): the last checkpoint then holds exactly what a status read without a
      // worker should show.
      if (idle && settledSinceCheckpoint) checkpoint();
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
    if (err instanceof wf.ContinueAsNew) throw err;
    if (!wf.isCancellation(err)) {
      // The run cannot go on: say so in PostgreSQL and the Web UI before the workflow fails.
      await wf.CancellationScope.nonCancellable(async () => {
        ended = true;
        finishedAtMs = Date.now();
        failedReason = failureLine(err);
        setPhase('failed');
        wf.upsertSearchAttributes([{ key: PAUSED, value: false }]);
        showDetails();
        await lifecycle.setRunStatus({ runId, status: 'failed', reason: failedReason });
      });
      throw err;
    }
    // Cancelled from Temporal: stop as gracefully as a cancel signal would.
    if (!cancelRequested) {
      cancelRequested = true;
      cancelReason ??= 'workflow cancelled';
      recordControl('cancelling', cancelReason);
    }
  }

  return wf.CancellationScope.nonCancellable(async () => {
    if (cancelRequested && !stopMarked) await lifecycle.markRunStopping({ runId });
    await drain();
    ended = true;
    const status = cancelRequested ? 'cancelled' : 'completed';
    s.counts = { ...(await lifecycle.readRunCounts({ runId })), delivery: s.counts.delivery };
    setPhase(status);
    // The final checkpoint first: whoever sees the run finished also sees its final counts.
    await checkpoint(cancelRequested ? `cancelled: ${cancelReason}` : 'run complete', true);
    await lifecycle.setRunStatus({ runId, status, reason: cancelReason });
    finishedAtMs = Date.now();
    // A cancelled run is no longer paused: the list must not show it among the paused ones.
    wf.upsertSearchAttributes([{ key: PAUSED, value: false }]);
    await wf.condition(wf.allHandlersFinished);
    showDetails();
    return {
      runId, status, counts: s.counts, exposureWindowMs: s.exposureWindowMs,
      wallTimeMs: finishedAtMs - s.startedAtMs, continuedAsNew: s.continuedAsNew,
    };
  });
}
