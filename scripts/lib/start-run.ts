// Creates a run (its row, and the cohort for explicit id lists) and starts its workflow.
// Shared by the CLI, the demo, the benchmarks and the tests.
import { randomBytes } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { inTransaction, type Db } from '../../db/pool';
import { createRun } from '../../db/sql/create-run';
import { addCohortAccounts } from '../../db/sql/add-cohort-accounts';
import { DEFAULT_PARAMS, paramProblems, RUN_ID_PATTERN, workflowIdForRun, type RunParams } from '../../domain/run';
import { pinResetRun } from '../../workflows/pin-reset-run';
import { OPERATOR, PHASE, REASON, RUN_ID } from '../../workflows/search-attributes';

export class RunInputError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot start the run:\n  - ${problems.join('\n  - ')}`);
    this.name = 'RunInputError';
  }
}

export interface StartRunRequest {
  runId?: string;
  reason: string;
  operator: string;
  params?: Partial<RunParams>;
  /** Explicit cohort (forensic file, redrive); otherwise every active account. */
  accountIds?: number[];
  taskQueue: string;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export async function startRun(db: Db, client: Client, req: StartRunRequest): Promise<{ runId: string; handle: WorkflowHandle<typeof pinResetRun> }> {
  const runId = req.runId ?? newRunId();
  const params: RunParams = { ...DEFAULT_PARAMS, ...req.params, cohort: req.accountIds ? (req.params?.cohort ?? 'file') : 'all_active' };
  const problems = paramProblems(params);
  if (!RUN_ID_PATTERN.test(runId)) problems.push(`run id must match ${RUN_ID_PATTERN}, got ${JSON.stringify(runId)}`);
  if (!req.reason?.trim()) problems.push('reason is required (the incident or ticket id)');
  if (req.reason && req.reason.length > 200) problems.push('reason must be at most 200 characters');
  if (!req.operator?.trim()) problems.push('operator is required');
  if (req.accountIds && req.accountIds.length === 0) problems.push('the cohort is empty');
  if (problems.length) throw new RunInputError(problems);

  await inTransaction(db, async (tx) => {
    const txDb = tx as unknown as Db;
    const created = await createRun(txDb, { id: runId, reason: req.reason, operator: req.operator, params });
    if (!created) throw new RunInputError([`run ${runId} exists already`]);
    if (req.accountIds) await addCohortAccounts(txDb, runId, req.accountIds);
  });

  const handle = await client.workflow.start(pinResetRun, {
    workflowId: workflowIdForRun(runId),
    taskQueue: req.taskQueue,
    args: [{ runId, reason: req.reason, operator: req.operator, params }],
    staticSummary: `PIN reset ${runId}: ${req.reason}`.slice(0, 200),
    staticDetails: [
      `**Run** \`${runId}\``,
      `**Reason**: ${req.reason}`,
      `**Started by**: ${req.operator}`,
      `**Cohort**: ${params.cohort === 'all_active' ? 'every active prepaid account' : `${req.accountIds?.length ?? 0} listed accounts`}`,
      `**Channel policy**: ${params.policy} · batch ${params.batchSize} · ${params.batchConcurrency} batches in flight · rate ${params.ratePerSecond || 'unlimited'} msg/s`,
    ].join('\n\n'),
    typedSearchAttributes: [
      { key: RUN_ID, value: runId }, { key: PHASE, value: 'preparing' }, { key: REASON, value: req.reason }, { key: OPERATOR, value: req.operator },
    ],
  });
  return { runId, handle };
}
