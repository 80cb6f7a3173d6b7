// One PIN-reset run: freeze the cohort, invalidate every PIN at database speed, then notify every
// customer at the provider rate, batch by batch in sliding windows. Deterministic and free of
// I/O; it carries only ids, ranges and counts. Activities are idempotent, so a batch dispatched
// twice (after a crash or continue-as-new) changes nothing the first dispatch already did.
//
// The parts: RunState (run-state.ts: the run's state and its transitions), BatchWindow
// (batch-window.ts: dispatch, tracking, drain), Checkpoints (checkpoints.ts: live readings),
// registerHandlers (handlers.ts: signals, queries, updates).
import * as wf from '@temporalio/workflow';
import type { PlannedBatch } from '../domain/types';
import { boundedDbSteps, lifecycle } from './activity-stubs';
import type { Phase, RunInput, RunResult } from './api';
import { BatchWindow, FOLLOW_UP_EVERY_MS } from './batch-window';
import { Checkpoints } from './checkpoints';
import { dbStallReason, failureLine } from './failures';
import { registerHandlers } from './handlers';
import { RunState } from './run-state';
import { OPERATOR, PAUSED, PHASE, REASON, RUN_ID } from './search-attributes';

/** Batches planned per planning call. */
const PLAN_PAGE = 200;

type DbSteps = ReturnType<typeof boundedDbSteps>;

export async function pinResetRun(input: RunInput): Promise<RunResult> {
  const run: RunState = new RunState(input, {
    recordControl: (status, reason) => {
      const seq = (run.carried.controlSeq = (run.carried.controlSeq ?? 0) + 1);
      window.keep(
        wf.CancellationScope.nonCancellable(() =>
          lifecycle.recordRunControl({ runId: input.runId, seq, status, reason }),
        ),
      );
    },
    showPhase: (phase) => wf.upsertSearchAttributes([{ key: PHASE, value: phase }]),
  });
  const window = new BatchWindow(run);
  const dbSteps = boundedDbSteps(run.stallSeconds);
  const checkpoints = new Checkpoints(run, window, dbSteps);
  registerHandlers(run, window);
  checkpoints.startTicker();

  try {
    // After a hand-over, the paused state is shown as it stands once the first signals are in
    // (the recorded histories depend on this order).
    if (!input.carried) await prepare(run, checkpoints, dbSteps);
    else run.pausedShown = run.carried.paused;
    await runBatches(run, window, checkpoints, dbSteps);
  } catch (err) {
    if (err instanceof wf.ContinueAsNew) throw err;
    if (!wf.isCancellation(err)) {
      await fail(run, checkpoints, err);
      throw err;
    }
    // Cancelled from Temporal: stop as gracefully as a cancel signal would.
    run.cancel(run.cancelReason ?? 'workflow cancelled');
  }
  return finish(run, window, checkpoints);
}

/** Search attributes, then the cohort frozen. Until it is, nothing else can happen: a failing database pauses here too. */
async function prepare(run: RunState, checkpoints: Checkpoints, dbSteps: DbSteps): Promise<void> {
  const { runId, reason, operator, params } = run.input;
  const s = run.carried;
  // Notify batches planned from the ledger page by page (a cursor), not carried as every reset batch.
  if (wf.patched('notify-cursor')) s.notifyCursor = 0;
  wf.upsertSearchAttributes([
    { key: RUN_ID, value: runId },
    { key: PHASE, value: run.phase },
    { key: REASON, value: reason },
    { key: OPERATOR, value: operator },
    { key: PAUSED, value: false },
  ]);
  checkpoints.showDetails();
  s.sendingSinceMs = Date.now();
  for (;;) {
    const prepared = await dbStep(run, 'prepareRun', () => dbSteps.prepareRun({ runId }));
    // A large cohort is frozen over several calls (each at most a minute): call again.
    if (prepared?.frozen === false) continue;
    if (prepared) {
      s.planned = prepared.planned;
      s.counts.planned = prepared.planned;
      break;
    }
    showPaused(run, checkpoints);
    checkpoints.showDetails();
    await wf.condition(() => !s.paused || run.cancelRequested);
    if (run.cancelRequested) break;
  }
  if (s.ratePerSecond !== params.ratePerSecond) await lifecycle.setSendRate({ runId, ratePerSecond: s.ratePerSecond });
  run.setPhase(s.canary === 'pending' ? 'canary' : 'resetting');
  void checkpoints.save('cohort frozen');
}

/** The main loop: plan and dispatch batches, follow the turns of the run, wait for the next change. */
async function runBatches(
  run: RunState,
  window: BatchWindow,
  checkpoints: Checkpoints,
  dbSteps: DbSteps,
): Promise<void> {
  const { runId } = run.input;
  const s = run.carried;
  for (;;) {
    if (window.failure) throw window.failure;
    showPaused(run, checkpoints);
    if (run.cancelRequested && !run.stopMarked) {
      run.stopMarked = true;
      await lifecycle.markRunStopping({ runId });
    }
    if (run.sending && !(await fillWindow(run, window, dbSteps))) continue;
    showCanaryTurns(run, checkpoints);

    const resetsDone = s.planningDone && s.toReset.length === 0 && window.inFlight.reset.size === 0;
    if (resetsDone && s.resetsDoneAtMs === undefined && !s.paused) {
      const marked = await dbStep(run, 'markResetsDone', () => dbSteps.markResetsDone({ runId }));
      if (!marked) continue;
      s.resetsDoneAtMs = Date.now();
      s.exposureWindowMs = marked.exposureWindowMs;
      if (s.canary !== 'pending' && s.canary !== 'waiting') run.setPhase('notifying');
      void checkpoints.save('every PIN of the cohort invalidated');
      continue; // notifications open now: dispatch them before waiting
    }
    const idle = !window.busy();
    const notifyPlanned = s.notifyCursor === undefined || s.notifyPlanningDone === true;
    const batchesDone = resetsDone && s.resetsDoneAtMs !== undefined && s.toNotify.length === 0 && notifyPlanned;
    if (idle && run.sending && batchesDone && !s.parkedSettled) {
      if (wf.patched('settle-parked-at-end')) {
        window.dispatchReconcile();
        continue;
      }
      s.parkedSettled = true; // a run started before the final reconciliation existed ends without it
    }
    // Sends are done once the batches and the final reconciliation of parked rows are.
    const sendsDone = batchesDone && window.inFlight.notify.size === 0 && s.parkedSettled === true;
    const following = !run.cancelRequested && !s.deliveryDone && (window.inFlight.notify.size > 0 || sendsDone);
    if (following && window.followUpDue()) window.dispatchFollowUp(sendsDone);
    if (sendsDone && !s.deliveryDone && window.followUp.enabled && run.phase !== 'confirming_delivery')
      run.setPhase('confirming_delivery');
    if (idle && (run.cancelRequested || (sendsDone && s.deliveryDone && !window.followUp.inFlight))) return;

    // Periodic readings come from the ticker. One more when the run goes idle (paused, awaiting
    // approval): the last checkpoint then holds exactly what a status read without a worker should show.
    if (idle && window.settledSinceCheckpoint) void checkpoints.save();
    checkpoints.showDetails();

    if (wf.workflowInfo().continueAsNewSuggested && !run.cancelRequested) await handOver(run, window);
    const seen = run.version;
    if (following) await wf.condition(() => run.version !== seen, FOLLOW_UP_EVERY_MS);
    else await wf.condition(() => run.version !== seen);
  }
}

/**
 * Plans batches ahead and fills the window. Resets first, at database speed: notifications would
 * compete with them for the worker and the database, and the exposure window is what counts. The
 * canary is the exception: its batch is notified as soon as it is reset; the rest waits for
 * `approve`. False when a planning step failed (the run paused itself).
 */
async function fillWindow(run: RunState, window: BatchWindow, dbSteps: DbSteps): Promise<boolean> {
  const { runId, params } = run.input;
  const s = run.carried;
  if (s.canary === 'pending' && s.canaryLast === undefined) {
    // The canary is one batch of exactly the first N accounts: the first N notifications.
    const planned = await dbStep(run, 'planBatches', () =>
      dbSteps.planBatches({ runId, after: 0, batchSize: params.canary, max: 1 }),
    );
    if (!planned) return false;
    const [canary] = planned;
    s.canaryLast = canary?.last ?? 0;
    if (canary) {
      if (s.notifyCursor !== undefined) s.notifyCursor = canary.last;
      s.toReset.push(canary);
      s.batchesPlanned++;
      s.planCursor = canary.last;
    } else s.planningDone = true;
    run.setPhase('canary');
  }
  // The canary gates notifications, never resets: every PIN is invalidated at once.
  if (!s.planningDone && s.toReset.length < params.resetConcurrency * 2) {
    const next = await dbStep(run, 'planBatches', () =>
      dbSteps.planBatches({ runId, after: s.planCursor, batchSize: params.batchSize, max: PLAN_PAGE }),
    );
    if (!next) return false;
    s.toReset.push(...next);
    s.batchesPlanned += next.length;
    if (next.length > 0) s.planCursor = next[next.length - 1].last;
    if (next.length < PLAN_PAGE) s.planningDone = true;
  }
  while (window.inFlight.reset.size < params.resetConcurrency && s.toReset.length)
    window.dispatchReset(s.toReset.shift() as PlannedBatch);
  if (s.canary === 'pending') {
    const i = s.toNotify.findIndex((b) => b.last <= s.canaryLast!);
    if (i >= 0 && window.inFlight.notify.size < params.batchConcurrency)
      window.dispatchNotify(s.toNotify.splice(i, 1)[0] as PlannedBatch);
  } else if (s.canary !== 'waiting' && s.resetsDoneAtMs !== undefined) {
    // Cursor mode: a page of two windows, planned when less than one is queued.
    if (s.notifyCursor !== undefined && !s.notifyPlanningDone && s.toNotify.length < params.batchConcurrency) {
      const page = params.batchConcurrency * 2;
      const next = await dbStep(run, 'planBatches', () =>
        dbSteps.planBatches({ runId, after: s.notifyCursor!, batchSize: params.batchSize, max: page }),
      );
      if (!next) return false;
      s.toNotify.push(...next);
      if (next.length > 0) s.notifyCursor = next[next.length - 1].last;
      if (next.length < page) s.notifyPlanningDone = true;
    }
    while (window.inFlight.notify.size < params.batchConcurrency && s.toNotify.length)
      window.dispatchNotify(s.toNotify.shift() as PlannedBatch);
  }
  return true;
}

/** The canary's turns: done (waiting for approval), then approved. */
function showCanaryTurns(run: RunState, checkpoints: Checkpoints): void {
  const s = run.carried;
  if (s.canary === 'waiting' && run.phase !== 'awaiting_approval') {
    run.setPhase('awaiting_approval');
    void checkpoints.save('canary done: waiting for approval');
  }
  if (s.canary === 'approved' && (['canary', 'awaiting_approval'] as Phase[]).includes(run.phase)) {
    run.setPhase(s.resetsDoneAtMs !== undefined ? 'notifying' : 'resetting');
    void checkpoints.save(`canary approved by ${s.approval?.by ?? 'an operator'}`);
  }
}

/** Operators can list every paused run (PinresetPaused = true); runs.status itself is written by the handlers. */
function showPaused(run: RunState, checkpoints: Checkpoints): void {
  const s = run.carried;
  if (s.paused === run.pausedShown) return;
  run.pausedShown = s.paused;
  wf.upsertSearchAttributes([{ key: PAUSED, value: s.paused }]);
  void checkpoints.save(s.paused ? `paused: ${s.pauseReason}` : 'resumed');
}

/** Runs a bounded database step; one that kept failing pauses the run and gives undefined. */
async function dbStep<T>(run: RunState, step: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const reason = dbStallReason(step, run.stallSeconds, err);
    if (!reason) throw err;
    run.pause(reason, 'run');
    return undefined;
  }
}

/** Before history limits: finish what is in flight, then start afresh with the state. */
async function handOver(run: RunState, window: BatchWindow): Promise<never> {
  run.setPhase('draining');
  await window.drain();
  await wf.condition(wf.allHandlersFinished);
  run.carried.continuedAsNew++;
  return wf.continueAsNew<typeof pinResetRun>({ ...run.input, carried: run.carried });
}

/** The run cannot go on: say so in PostgreSQL and the Web UI before the workflow fails. */
async function fail(run: RunState, checkpoints: Checkpoints, err: unknown): Promise<void> {
  await wf.CancellationScope.nonCancellable(async () => {
    run.ended = true;
    run.finishedAtMs = Date.now();
    run.failedReason = failureLine(err);
    run.setPhase('failed');
    wf.upsertSearchAttributes([{ key: PAUSED, value: false }]);
    checkpoints.showDetails();
    await lifecycle.setRunStatus({ runId: run.input.runId, status: 'failed', reason: run.failedReason });
  });
}

/** Drains the window and records the end: final counts and checkpoint first, then the status. */
function finish(run: RunState, window: BatchWindow, checkpoints: Checkpoints): Promise<RunResult> {
  const { runId } = run.input;
  const s = run.carried;
  return wf.CancellationScope.nonCancellable(async () => {
    if (run.cancelRequested && !run.stopMarked) await lifecycle.markRunStopping({ runId });
    await window.drain();
    run.ended = true;
    const status = run.cancelRequested ? 'cancelled' : 'completed';
    s.counts = { ...(await lifecycle.readRunCounts({ runId })), delivery: s.counts.delivery };
    run.setPhase(status);
    // The final checkpoint first: whoever sees the run finished also sees its final counts.
    await checkpoints.save(run.cancelRequested ? `cancelled: ${run.cancelReason}` : 'run complete', true);
    await lifecycle.setRunStatus({ runId, status, reason: run.cancelReason });
    run.finishedAtMs = Date.now();
    // A cancelled run is no longer paused: the list must not show it among the paused ones.
    wf.upsertSearchAttributes([{ key: PAUSED, value: false }]);
    await wf.condition(wf.allHandlersFinished);
    checkpoints.showDetails();
    return {
      runId,
      status,
      counts: s.counts,
      exposureWindowMs: s.exposureWindowMs,
      wallTimeMs: run.finishedAtMs - s.startedAtMs,
      continuedAsNew: s.continuedAsNew,
    };
  });
}
