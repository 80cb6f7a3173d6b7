// Steering a run through its workflow: pause, resume, cancel, approve (signals) and set-rate (an
// Update, validated by the workflow). The run must exist in the database and not be finished.
import {
  isGrpcDeadlineError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import type { Db } from '../db/pool';
import { readRun, type RunRow } from '../db/sql/read-run';
import { rateProblems, workflowIdForRun, type Rate } from '../domain/run';
import {
  approveUpdate,
  cancelSignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  setRateUpdate,
  type Approval,
} from '../workflows/api';
import { OperationFailedError, UnknownRunError, UsageError } from './errors';
import { FINISHED } from './run-status';
import type { TemporalClient } from './temporal-client';

export type Control =
  | { kind: 'pause'; reason: string }
  | { kind: 'resume' }
  | { kind: 'cancel'; reason: string }
  | { kind: 'approve'; by: string };

async function liveRun(db: Db, runId: string): Promise<RunRow> {
  const run = await readRun(db, runId);
  if (!run) throw new UnknownRunError(runId);
  if (FINISHED.includes(run.status))
    throw new OperationFailedError(`run ${runId} is ${run.status} already: nothing to steer`);
  return run;
}

/** What a control did; `note` when it changed nothing (resume of a run that is not paused, a second approve). */
export interface ControlOutcome {
  note?: string;
  approval?: Approval & { already: boolean };
}

function temporalFailure(err: unknown, runId: string, what: string, timeoutMs: number): Error {
  if (err instanceof WorkflowNotFoundError)
    return new OperationFailedError(
      `run ${runId}: its workflow is not running in Temporal (${err.message.split('\n')[0]})`,
    );
  if (isGrpcDeadlineError(err) || err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return new OperationFailedError(
      `run ${runId}: ${what} got no answer within ${timeoutMs / 1000} s (is a worker running?)`,
    );
  }
  return new OperationFailedError(`run ${runId}: ${what} failed: ${(err as Error).message.split('\n')[0]}`);
}

export async function sendControl(
  db: Db,
  t: TemporalClient,
  runId: string,
  control: Control,
  timeoutMs = 10_000,
): Promise<ControlOutcome> {
  const run = await liveRun(db, runId);
  const handle = t.client.workflow.getHandle(workflowIdForRun(runId));
  const deadline = () => Date.now() + timeoutMs;
  try {
    switch (control.kind) {
      case 'pause':
        await t.connection.withDeadline(deadline(), () => handle.signal(pauseSignal, { reason: control.reason }));
        return {};
      case 'resume': {
        // The workflow ignores a resume of a run that is not paused: say so instead of "requested".
        const p = await t.connection.withDeadline(deadline(), () => handle.query(progressQuery)).catch(() => undefined);
        const paused = p ? p.paused && !p.cancelRequested : run.status === 'paused';
        if (!paused)
          return {
            note: `Run ${runId} is not paused (${p?.cancelRequested ? 'cancelling' : run.status}): nothing to resume.`,
          };
        await t.connection.withDeadline(deadline(), () => handle.signal(resumeSignal));
        return {};
      }
      case 'cancel':
        await t.connection.withDeadline(deadline(), () => handle.signal(cancelSignal, { reason: control.reason }));
        return {};
      case 'approve': {
        const approval = await t.connection.withDeadline(deadline(), () =>
          handle.executeUpdate(approveUpdate, { args: [{ by: control.by }] }),
        );
        return {
          approval,
          note: approval.already
            ? `Run ${runId} was already approved by ${approval.by} at ${new Date(approval.atMs).toISOString()}: nothing changed.`
            : undefined,
        };
      }
    }
  } catch (err) {
    // Refused by the workflow (the canary is not done yet, no canary): the run's state is at fault.
    if (err instanceof WorkflowUpdateFailedError)
      throw new OperationFailedError(`approve refused for run ${runId}: ${err.cause?.message ?? err.message}`);
    throw temporalFailure(err, runId, control.kind, timeoutMs);
  }
}

/** Changes the run's notification rate; a bad value is refused before anything is sent (same rule as the workflow's validator). */
export async function setRate(
  db: Db,
  t: TemporalClient,
  runId: string,
  rate: Rate,
  timeoutMs = 15_000,
): Promise<{ previous: Rate; current: Rate }> {
  const problems = rateProblems(rate);
  if (problems.length) throw new UsageError(problems.join('; '));
  await liveRun(db, runId);
  const handle = t.client.workflow.getHandle(workflowIdForRun(runId));
  try {
    return await t.connection.withDeadline(Date.now() + timeoutMs, () =>
      handle.executeUpdate(setRateUpdate, { args: [rate] }),
    );
  } catch (err) {
    // Rejected by the workflow's validator: the value is at fault.
    if (err instanceof WorkflowUpdateFailedError)
      throw new UsageError(`set-rate refused: ${err.cause?.message ?? err.message}`);
    throw temporalFailure(err, runId, 'set-rate', timeoutMs);
  }
}
