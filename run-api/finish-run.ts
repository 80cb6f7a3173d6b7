// `finish`: carries a cancelled, failed or terminated run on where it stopped. It is the same run
// (same ledger, same references), started again as a new workflow execution under the same
// workflow id: PINs already reset are not reset again (the ledger moves only forward), rows left
// 'sending' are taken over and reconciled after their lease and grace, never blindly re-sent.
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Db } from '../db/pool';
import { readRun } from '../db/sql/read-run';
import { setRunStatus } from '../db/sql/set-run-status';
import { DEFAULT_PARAMS, workflowIdForRun, type RunParams } from '../domain/run';
import { pinResetRun } from '../workflows/pin-reset-run';
import { OperationFailedError, UnknownRunError } from './errors';

export async function finishRun(
  db: Db,
  client: Client,
  runId: string,
  taskQueue: string,
): Promise<WorkflowHandle<typeof pinResetRun>> {
  const run = await readRun(db, runId);
  if (!run) throw new UnknownRunError(runId);
  if (run.status === 'completed') throw new OperationFailedError(`run ${runId} completed: there is nothing to finish`);
  const workflowId = workflowIdForRun(runId);
  const running = await client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      (d) => d.status.name === 'RUNNING',
      () => false,
    );
  if (running)
    throw new OperationFailedError(
      `run ${runId} is still running in Temporal: use \`resume\` if it is paused, or wait for it`,
    );
  const params = { ...DEFAULT_PARAMS, ...(run.params as Partial<RunParams>) } as RunParams;
  // The run is live again: its accounts are held by it, and its sends may go out.
  await setRunStatus(db, runId, 'running', `finished by operator after ${run.status}`);
  try {
    return await client.workflow.start(pinResetRun, {
      workflowId,
      taskQueue,
      args: [{ runId, reason: run.reason, operator: run.operator, params }],
      staticSummary: `PIN reset ${runId} (finish)`.slice(0, 200),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new OperationFailedError(`run ${runId} was started again meanwhile`);
    throw err;
  }
}
