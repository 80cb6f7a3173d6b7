// A run's status: its state from the live `progress` query when a worker answers in time,
// otherwise from the run's row and last checkpoint in PostgreSQL (and it says which, and why).
// Counts, rate, ETA, accounts in flight and error codes always come from a fresh reading of the
// ledger, so they move with it whatever the workflow is doing. A workflow whose tasks fail (a
// search attribute missing on the server, a bug) is diagnosed from Temporal and reported.
import { isGrpcDeadlineError, WorkflowNotFoundError } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { Db } from '../db/pool';
import { readLedgerReading } from '../db/sql/read-live-progress';
import { readRun, type RunRow } from '../db/sql/read-run';
import { FRESH_READING_MS, type LiveReading } from '../domain/live-progress';
import { rateFromNumber, workflowIdForRun, type Rate } from '../domain/run';
import { zeroCounts, type Counts } from '../domain/types';
import { progressQuery, type Approval, type AutoPauseFigures, type Progress } from '../workflows/api';
import { UnknownRunError } from './errors';
import type { TemporalClient } from './temporal-client';

export const FINISHED = ['completed', 'cancelled', 'failed'];

export interface RunStatusView {
  runId: string;
  workflowId: string;
  /** The run's status in the database: created, running, paused, cancelling, completed, cancelled, failed. */
  status: string;
  /** live: the workflow answered; checkpoint: last checkpoint (no answer); final: the run is over. */
  source: 'live' | 'checkpoint' | 'final';
  /** Why the live query was not used (source checkpoint). */
  fallbackReason?: string;
  /** The workflow cannot make progress (its tasks fail, or it ended in Temporal without the run): status exits 1. */
  workflowProblem?: string;
  phase: string;
  paused: boolean;
  pauseReason?: string;
  autoPaused: boolean;
  awaitingApproval: boolean;
  cancelRequested: boolean;
  counts: Counts;
  /** The ledger's reading the counts come from (rate, ETA, in flight, error codes). */
  live?: LiveReading;
  /** Notification rate ceiling, messages/s or 'unlimited'. */
  ratePerSecond: Rate;
  reason: string;
  operator: string;
  cohortKind: string;
  /** A redrive's source run. */
  sourceRunId?: string;
  canary: number;
  approval?: Approval;
  autoPause?: AutoPauseFigures;
  /** Why it was cancelled or failed. */
  endReason?: string;
  sendingSinceMs?: number;
  startedAt?: string;
  /** Time spent paused so far (live only): rates leave it out. */
  pausedMs?: number;
  finishedAt?: string;
  /** When the counts were taken: the ledger reading's time, else the checkpoint's. */
  asOf: string;
  batches?: Progress['batches'];
  exposureWindowMs?: number;
  finished: boolean;
}

/** Accounts whose outcome is settled (planned minus pending). */
export function settledOf(c: Counts): number {
  return Math.max(0, c.planned - c.pending);
}

function approvalOf(run: RunRow): Approval | undefined {
  return run.approvedBy && run.approvedAt ? { by: run.approvedBy, atMs: run.approvedAt.getTime() } : undefined;
}

function fromProgress(run: RunRow, p: Progress, now: Date): RunStatusView {
  const finished = p.phase === 'completed' || p.phase === 'cancelled' || p.phase === 'failed';
  return {
    // The workflow knows it is over a moment before its row says so.
    runId: run.id,
    workflowId: workflowIdForRun(run.id),
    status: finished ? p.phase : run.status,
    source: 'live',
    phase: p.phase,
    paused: p.paused,
    pauseReason: p.pauseReason,
    autoPaused: p.autoPaused,
    awaitingApproval: p.awaitingApproval,
    cancelRequested: p.cancelRequested,
    counts: p.counts,
    ratePerSecond: p.ratePerSecond,
    reason: run.reason,
    operator: run.operator,
    cohortKind: run.cohortKind,
    sourceRunId: run.sourceRunId ?? undefined,
    canary: p.canary ?? 0,
    approval: p.approval ?? approvalOf(run),
    autoPause: p.autoPause,
    endReason: p.endReason,
    sendingSinceMs: p.sendingSinceMs,
    startedAt: new Date(p.startedAtMs).toISOString(),
    pausedMs: p.pausedMs,
    finishedAt: run.finishedAt?.toISOString(),
    asOf: now.toISOString(),
    batches: p.batches,
    exposureWindowMs: p.exposureWindowMs,
    finished,
  };
}

function fromDatabase(
  run: RunRow,
  source: 'checkpoint' | 'final',
  fallbackReason: string | undefined,
  now: Date,
): RunStatusView {
  const cp = run.lastCheckpoint;
  const finished = FINISHED.includes(run.status);
  const pauseReason = run.status === 'paused' ? (run.statusReason ?? 'paused') : undefined;
  return {
    runId: run.id,
    workflowId: workflowIdForRun(run.id),
    status: run.status,
    source,
    fallbackReason,
    phase: finished ? run.status : (cp?.phase ?? 'preparing'),
    paused: run.status === 'paused',
    pauseReason,
    autoPaused: pauseReason?.startsWith('auto-paused') ?? false,
    awaitingApproval: !finished && cp?.phase === 'awaiting_approval',
    cancelRequested: run.status === 'cancelling',
    counts: cp?.counts ?? { ...zeroCounts(), planned: run.planned, pending: run.planned },
    ratePerSecond: rateFromNumber(run.ratePerSecond),
    reason: run.reason,
    operator: run.operator,
    cohortKind: run.cohortKind,
    sourceRunId: run.sourceRunId ?? undefined,
    canary: Number(run.params.canary ?? 0),
    approval: approvalOf(run),
    endReason:
      run.status === 'cancelled' || run.status === 'failed' || run.status === 'cancelling'
        ? (run.statusReason ?? undefined)
        : undefined,
    startedAt: run.startedAt?.toISOString(),
    finishedAt: run.finishedAt?.toISOString(),
    asOf: (cp?.createdAt ?? now).toISOString(),
    exposureWindowMs:
      run.resetsDoneAt && run.startedAt ? run.resetsDoneAt.getTime() - run.startedAt.getTime() : undefined,
    finished,
  };
}

function whyNoAnswer(err: unknown, timeoutMs: number): string {
  if (isGrpcDeadlineError(err))
    return `no worker answered the progress query within ${timeoutMs / 1000} s (is a worker running?)`;
  if (err instanceof WorkflowNotFoundError) return 'the workflow is not known to Temporal';
  return `the progress query failed: ${(err as Error).message.split('\n')[0]}`;
}

export interface StatusOptions {
  /** How long the live query may take before falling back to the checkpoint. */
  queryTimeoutMs: number;
  now?: () => Date;
}

const { EventType } = proto.temporal.api.enums.v1;

/**
 * Why the run's workflow cannot make progress, from Temporal: it is closed while the run is not
 * finished, or its workflow tasks keep failing (the last failure's message). Undefined when fine
 * or when Temporal cannot tell.
 */
export async function diagnoseWorkflow(t: TemporalClient, run: RunRow, timeoutMs: number): Promise<string | undefined> {
  const handle = t.client.workflow.getHandle(workflowIdForRun(run.id));
  const deadline = () => Date.now() + timeoutMs;
  let d: Awaited<ReturnType<typeof handle.describe>>;
  try {
    d = await t.connection.withDeadline(deadline(), () => handle.describe());
  } catch (err) {
    if (err instanceof WorkflowNotFoundError && run.status !== 'created')
      return 'its workflow is not known to Temporal';
    return undefined;
  }
  if (d.status.name !== 'RUNNING' && d.status.name !== 'CONTINUED_AS_NEW' && !FINISHED.includes(run.status)) {
    return `its workflow is ${d.status.name} in Temporal while the run is ${run.status} (see the workflow's history in the Web UI)`;
  }
  const attempt = d.raw.pendingWorkflowTask?.attempt ?? 0;
  if (attempt < 2) return undefined;
  let message = "see the workflow's history in the Web UI";
  try {
    const history = await t.connection.withDeadline(deadline(), () => handle.fetchHistory());
    const failed = [...(history.events ?? [])]
      .reverse()
      .find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
    const f = failed?.workflowTaskFailedEventAttributes?.failure;
    if (f?.message) message = f.message.split('\n')[0].slice(0, 300);
  } catch {
    // the count of attempts alone says enough
  }
  return `its workflow tasks are failing (attempt ${attempt}): ${message}`;
}

/**
 * `temporal` is a connected client, or the reason there is none (Temporal unreachable): status
 * then still answers from the database.
 */
export async function readRunStatus(
  db: Db,
  temporal: TemporalClient | { unavailable: string },
  runId: string,
  opts: StatusOptions,
): Promise<RunStatusView> {
  const now = opts.now ?? (() => new Date());
  const run = await readRun(db, runId);
  if (!run) throw new UnknownRunError(runId);
  const withLedger = async (v: RunStatusView, r: RunRow): Promise<RunStatusView> => {
    // The workflow's own reading when it is fresh (it reads every few seconds while batches run):
    // a large ledger is not scanned twice, nor every --watch frame.
    // Not one taken before a pause or cancel: "in flight" must then say what is still being sent.
    const saved = r.lastCheckpoint?.live;
    const beforeStop = saved && r.stopRequestedAt !== null && saved.readAtMs < r.stopRequestedAt.getTime();
    const fresh =
      saved && !v.finished && !beforeStop && Date.now() - saved.readAtMs < FRESH_READING_MS ? saved : undefined;
    const savedDelivery = r.lastCheckpoint?.counts.delivery;
    const { live, delivery } =
      fresh && savedDelivery ? { live: fresh, delivery: savedDelivery } : await readLedgerReading(db, r.id);
    return { ...v, counts: { ...live.counts, delivery }, live, asOf: new Date(live.readAtMs).toISOString() };
  };
  if (FINISHED.includes(run.status)) return withLedger(fromDatabase(run, 'final', undefined, now()), run);
  if ('unavailable' in temporal) return withLedger(fromDatabase(run, 'checkpoint', temporal.unavailable, now()), run);
  const handle = temporal.client.workflow.getHandle(workflowIdForRun(runId));
  let view: RunStatusView;
  let current = run;
  try {
    const p = await temporal.connection.withDeadline(Date.now() + opts.queryTimeoutMs, () =>
      handle.query(progressQuery),
    );
    view = fromProgress(run, p, now());
  } catch (err) {
    // The run may have finished between the two reads: prefer its final record then.
    current = (await readRun(db, runId)) ?? run;
    if (FINISHED.includes(current.status)) return withLedger(fromDatabase(current, 'final', undefined, now()), current);
    view = fromDatabase(current, 'checkpoint', whyNoAnswer(err, opts.queryTimeoutMs), now());
  }
  if (!view.finished) {
    const problem = await diagnoseWorkflow(temporal, current, opts.queryTimeoutMs);
    if (problem) view = { ...view, workflowProblem: problem };
  }
  return withLedger(view, current);
}
