// A run's status: from the live `progress` query when a worker answers in time, otherwise from
// the run's row and last checkpoint in PostgreSQL (and it says which, and why). Finished runs
// are read from the database, with the ledger's own counts.
import { isGrpcDeadlineError, WorkflowNotFoundError } from '@temporalio/client';
import type { Db } from '../../db/pool';
import { readCounts } from '../../db/sql/read-counts';
import { readDeliveryCounts } from '../../db/sql/read-delivery-counts';
import { readRun, type RunRow } from '../../db/sql/read-run';
import { rateFromNumber, workflowIdForRun, type Rate } from '../../domain/run';
import { zeroCounts, type Counts } from '../../domain/types';
import { progressQuery, type Progress } from '../../workflows/api';
import { UnknownRunError } from './cli-errors';
import type { TemporalClient } from './temporal-client';

export const FINISHED = ['completed', 'cancelled', 'failed'];

export interface RunStatusView {
  runId: string;
  workflowId: string;
  /** The run's status in the database: created, running, paused, completed, cancelled, failed. */
  status: string;
  /** live: the workflow answered; checkpoint: last checkpoint (no answer); final: the run is over. */
  source: 'live' | 'checkpoint' | 'final';
  /** Why the live query was not used (source checkpoint). */
  fallbackReason?: string;
  phase: string;
  paused: boolean;
  pauseReason?: string;
  autoPaused: boolean;
  awaitingApproval: boolean;
  cancelRequested: boolean;
  counts: Counts;
  /** Notification rate ceiling, messages/s or 'unlimited'. */
  ratePerSecond: Rate;
  reason: string;
  operator: string;
  startedAt?: string;
  /** Time spent paused so far (live only): rates leave it out. */
  pausedMs?: number;
  finishedAt?: string;
  /** When the counts were taken: now (live) or the checkpoint's time. */
  asOf: string;
  batches?: Progress['batches'];
  exposureWindowMs?: number;
  finished: boolean;
}

/** Accounts whose outcome is settled (planned minus pending). */
export function settledOf(c: Counts): number {
  return Math.max(0, c.planned - c.pending);
}

function fromProgress(run: RunRow, p: Progress, now: Date): RunStatusView {
  const finished = p.phase === 'completed' || p.phase === 'cancelled';
  return {
    // The workflow knows it is over a moment before its row says so.
    runId: run.id, workflowId: workflowIdForRun(run.id), status: finished ? p.phase : run.status, source: 'live',
    phase: p.phase, paused: p.paused, pauseReason: p.pauseReason, autoPaused: p.autoPaused, awaitingApproval: p.awaitingApproval,
    cancelRequested: p.cancelRequested, counts: p.counts, ratePerSecond: p.ratePerSecond, reason: run.reason, operator: run.operator,
    startedAt: new Date(p.startedAtMs).toISOString(), pausedMs: p.pausedMs, finishedAt: run.finishedAt?.toISOString(), asOf: now.toISOString(),
    batches: p.batches, exposureWindowMs: p.exposureWindowMs, finished,
  };
}

function fromDatabase(run: RunRow, source: 'checkpoint' | 'final', fallbackReason: string | undefined, now: Date, ledgerCounts?: Counts): RunStatusView {
  const cp = run.lastCheckpoint;
  const finished = FINISHED.includes(run.status);
  const pauseReason = run.status === 'paused' ? (run.statusReason ?? 'paused') : undefined;
  return {
    runId: run.id, workflowId: workflowIdForRun(run.id), status: run.status, source, fallbackReason,
    phase: finished ? run.status : (cp?.phase ?? 'preparing'),
    paused: run.status === 'paused', pauseReason, autoPaused: pauseReason?.startsWith('auto-paused') ?? false,
    awaitingApproval: !finished && cp?.phase === 'awaiting_approval', cancelRequested: false,
    counts: ledgerCounts ?? cp?.counts ?? { ...zeroCounts(), planned: run.planned, pending: run.planned },
    ratePerSecond: rateFromNumber(run.ratePerSecond), reason: run.reason, operator: run.operator,
    startedAt: run.startedAt?.toISOString(), finishedAt: run.finishedAt?.toISOString(),
    asOf: (ledgerCounts ? now : (cp?.createdAt ?? now)).toISOString(),
    exposureWindowMs: run.resetsDoneAt && run.startedAt ? run.resetsDoneAt.getTime() - run.startedAt.getTime() : undefined,
    finished,
  };
}

function whyNoAnswer(err: unknown, timeoutMs: number): string {
  if (isGrpcDeadlineError(err)) return `no worker answered the progress query within ${timeoutMs / 1000} s (is a worker running?)`;
  if (err instanceof WorkflowNotFoundError) return 'the workflow is not known to Temporal';
  return `the progress query failed: ${(err as Error).message.split('\n')[0]}`;
}

export interface StatusOptions {
  /** How long the live query may take before falling back to the checkpoint. */
  queryTimeoutMs: number;
  now?: () => Date;
}

/**
 * A finished run's record, with counts from the ledger itself: exact however the run ended (the
 * workflow saves its final checkpoint before the final status, but a run finished by older code
 * or by hand may have none).
 */
async function finalStatus(db: Db, run: RunRow, now: Date): Promise<RunStatusView> {
  const [counts, delivery] = await Promise.all([readCounts(db, run.id), readDeliveryCounts(db, run.id)]);
  return fromDatabase(run, 'final', undefined, now, { ...counts, delivery });
}

/**
 * `temporal` is a connected client, or the reason there is none (Temporal unreachable): status
 * then still answers from the database.
 */
export async function readRunStatus(db: Db, temporal: TemporalClient | { unavailable: string }, runId: string, opts: StatusOptions): Promise<RunStatusView> {
  const now = opts.now ?? (() => new Date());
  const run = await readRun(db, runId);
  if (!run) throw new UnknownRunError(runId);
  if (FINISHED.includes(run.status)) return finalStatus(db, run, now());
  if ('unavailable' in temporal) return fromDatabase(run, 'checkpoint', temporal.unavailable, now());
  try {
    const handle = temporal.client.workflow.getHandle(workflowIdForRun(runId));
    const p = await temporal.connection.withDeadline(Date.now() + opts.queryTimeoutMs, () => handle.query(progressQuery));
    return fromProgress(run, p, now());
  } catch (err) {
    // The run may have finished between the two reads: prefer its final record then.
    const again = (await readRun(db, runId)) ?? run;
    if (FINISHED.includes(again.status)) return finalStatus(db, again, now());
    return fromDatabase(again, 'checkpoint', whyNoAnswer(err, opts.queryTimeoutMs), now());
  }
}
