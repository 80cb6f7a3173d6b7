// `redrive`: a new run (cohort kind 'redrive') over the accounts whose notification failed in an
// earlier run. Their PINs were invalidated by that run and customers may have set new ones since,
// so the redrive's reset step does not touch `accounts` again (db/migrations/004_redrive_reset.sql);
// only the notification is sent again. Accounts notified since by a later run are left out.
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { readRun } from '../db/sql/read-run';
import { missingMigrations } from '../db/schema-version';
import { selectRedriveAccounts } from '../db/sql/select-redrive-accounts';
import { DEFAULT_PARAMS, type RunParams } from '../domain/run';
import { OperationFailedError, UnknownRunError } from './errors';
import { FINISHED } from './run-status';
import { startRun } from './start-run';

export interface RedriveRequest {
  sourceRunId: string;
  /** Default: the source run's reason (the incident), so both are found by it. */
  reason?: string;
  operator: string;
  runId?: string;
  /** Overrides; the rest comes from the source run's parameters. */
  params: Partial<RunParams>;
  taskQueue: string;
}

export type RedriveResult =
  | { started: false; sourceRunId: string; failed: 0; handledSince: number }
  | {
      started: true;
      sourceRunId: string;
      runId: string;
      workflowId: string;
      accounts: number;
      handledSince: number;
      params: RunParams;
    };

const INHERITED: (keyof RunParams)[] = [
  'batchSize',
  'batchConcurrency',
  'resetConcurrency',
  'ratePerSecond',
  'policy',
  'autoPauseFailureRate',
  'autoPauseWindow',
  'dbStallPauseSeconds',
  'delivery',
];

export async function redrive(db: Db, client: Client, req: RedriveRequest): Promise<RedriveResult> {
  const source = await readRun(db, req.sourceRunId);
  if (!source) throw new UnknownRunError(req.sourceRunId);
  if (!FINISHED.includes(source.status)) {
    throw new OperationFailedError(
      `run ${req.sourceRunId} is ${source.status}: redrive it once it has finished (or cancel it first)`,
    );
  }
  // The redrive branch of pinreset_reset_batch (no PIN touched) is part of the schema this code
  // was tested with (db/schema.sql): refuse on a database that has not applied all of it.
  const missing = await missingMigrations(db);
  if (missing.length) {
    throw new OperationFailedError(
      `refusing to redrive: the database lacks migrations ${missing.join(', ')} of this release, so its pinreset_reset_batch may reset these PINs again; run \`npm run migrate\` first`,
    );
  }
  const { accountIds, handledSince } = await selectRedriveAccounts(db, req.sourceRunId);
  if (accountIds.length === 0) return { started: false, sourceRunId: req.sourceRunId, failed: 0, handledSince };

  const inherited: Partial<RunParams> = {};
  for (const k of INHERITED)
    if (source.params[k] !== undefined) (inherited as Record<string, unknown>)[k] = source.params[k];
  const params: RunParams = {
    ...DEFAULT_PARAMS,
    ...inherited,
    canary: 0,
    dryRun: false,
    ...req.params,
    cohort: 'redrive',
  };
  // A delivery setting given for the redrive changes that one; the others stay the source's.
  if (inherited.delivery || req.params.delivery) params.delivery = { ...inherited.delivery, ...req.params.delivery };
  const { runId, handle } = await startRun(db, client, {
    runId: req.runId,
    reason: req.reason ?? source.reason,
    operator: req.operator,
    taskQueue: req.taskQueue,
    accountIds,
    params,
    sourceRunId: req.sourceRunId,
  });
  return {
    started: true,
    sourceRunId: req.sourceRunId,
    runId,
    workflowId: handle.workflowId,
    accounts: accountIds.length,
    handledSince,
    params,
  };
}
