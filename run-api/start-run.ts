// Creates a run (its row, and the cohort for explicit id lists) and starts its workflow.
// Shared by the CLI, the demo, the benchmarks and the tests.
import { RunInputError } from './errors';
import { randomBytes } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { inTransaction, type Db } from '../db/pool';
import { createRun } from '../db/sql/create-run';
import { addCohortAccounts } from '../db/sql/add-cohort-accounts';
import { countAlreadyReset } from '../db/sql/count-already-reset';
import { findLiveOverlap } from '../db/sql/find-live-overlap';
import type { MessageConfig } from '../config';
import {
  DEFAULT_PARAMS,
  formatRate,
  paramProblems,
  RUN_ID_PATTERN,
  workflowIdForRun,
  type RunParams,
} from '../domain/run';
import { pinResetRun } from '../workflows/pin-reset-run';
import { OPERATOR, PHASE, REASON, RUN_ID, SOURCE_RUN_ID } from '../workflows/search-attributes';

export interface StartRunRequest {
  runId?: string;
  reason: string;
  operator: string;
  params?: Partial<RunParams>;
  /** Explicit cohort (forensic file, redrive); otherwise every account not closed or deleted. */
  accountIds?: number[];
  /** A redrive's source run: recorded on the run and as the PinresetSourceRunId search attribute. */
  sourceRunId?: string;
  taskQueue: string;
  /** The message parameters to freeze in the run's row: every worker then sends the same text. */
  message?: MessageConfig;
}

export { RunInputError };

/** One live run per account: the accounts are held by an unfinished run. */
export class CohortHeldError extends RunInputError {
  constructor(
    readonly heldBy: string,
    status: string,
  ) {
    super([
      `run ${heldBy} (${status}) still holds accounts of this cohort: finish it (\`pinreset finish ${heldBy}\`) ` +
        `or wait for it to end; a second run would reset and notify the same customers again`,
    ]);
    this.name = 'CohortHeldError';
  }
}

/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/** Markdown shown under "Details" in the Web UI for the whole life of the run (<= 20 KB). */
export function staticDetails(
  runId: string,
  req: Pick<StartRunRequest, 'reason' | 'operator' | 'accountIds' | 'sourceRunId'>,
  params: RunParams,
): string {
  const cohort =
    params.cohort === 'all_active'
      ? 'every active prepaid account (frozen when the run starts)'
      : params.cohort === 'redrive'
        ? `${req.accountIds?.length ?? 0} accounts whose notification failed${req.sourceRunId ? ` in run \`${req.sourceRunId}\`` : ''}: notified again, PINs NOT reset again`
        : `${req.accountIds?.length ?? 0} listed accounts (${params.cohort})`;
  const lines = [
    `**Run** \`${runId}\` · find all its workflows with \`PinresetRunId = '${runId}'\``,
    ...(req.sourceRunId
      ? [
          `**Redrive of** \`${req.sourceRunId}\` (\`PinresetSourceRunId = '${req.sourceRunId}'\` lists every redrive of it)`,
        ]
      : []),
    `**Reason**: ${oneLine(req.reason)}`,
    `**Started by**: ${oneLine(req.operator)}`,
    `**Cohort**: ${cohort}`,
    `**Channel policy**: ${params.policy} · batch ${params.batchSize} accounts · ${params.batchConcurrency} notify / ${params.resetConcurrency} reset batches in flight · rate ${formatRate(params.ratePerSecond)}${params.dryRun ? ' · **dry run**' : ''}`,
    `**Safety**: ${params.canary > 0 ? `canary: every PIN is invalidated at once, the first ${params.canary} accounts are notified, then notifications wait for \`approve\`` : 'no canary'} · auto-pause above ${(100 * params.autoPauseFailureRate).toFixed(1)}% failed of the last ${params.autoPauseWindow} attempts (and within a batch from its 100th attempt) · a database step failing for ${params.dbStallPauseSeconds ?? 300} s pauses the run`,
    '**Controls** (Send Signal / Send Update): signals `pause` `{"reason":"..."}`, `resume`, `cancel` `{"reason":"..."}`; updates `approve` `{"by":"<you>"}` and `setRate` with a number (msg/s) or "unlimited" (0 is refused: pause to stop). Do not use Terminate or Reset (docs/operators.md). Live status: the Current Details panel and the query `progress`.',
  ];
  return truncateUtf8(lines.join('\n\n'), 20_000);
}

/** Advisory lock taken while a run's cohort is checked and recorded. */
const COHORT_LOCK = 0x70696e63; // 'pinc'

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export async function startRun(
  db: Db,
  client: Client,
  req: StartRunRequest,
): Promise<{ runId: string; handle: WorkflowHandle<typeof pinResetRun> }> {
  const runId = req.runId ?? newRunId();
  const params: RunParams = {
    ...DEFAULT_PARAMS,
    ...req.params,
    cohort: req.accountIds ? (req.params?.cohort ?? 'file') : 'all_active',
  };
  const problems = paramProblems(params);
  if (!RUN_ID_PATTERN.test(runId)) problems.push(`run id must match ${RUN_ID_PATTERN}, got ${JSON.stringify(runId)}`);
  if (!req.reason?.trim()) problems.push('reason is required (the incident or ticket id)');
  if (req.reason && req.reason.length > 200) problems.push('reason must be at most 200 characters');
  if (!req.operator?.trim()) problems.push('operator is required');
  if (req.accountIds && req.accountIds.length === 0) problems.push('the cohort is empty');
  if (problems.length) throw new RunInputError(problems);

  await inTransaction(db, async (tx) => {
    const txDb = tx;
    // Two starts at once must not both pass the checks below.
    await tx.query('SELECT pg_advisory_xact_lock($1)', [COHORT_LOCK]);
    const ids = req.accountIds ?? null;
    const held = await findLiveOverlap(txDb, runId, ids);
    if (held) throw new CohortHeldError(held.runId, held.status);
    if (params.resetMode === 'reset' && params.cohort !== 'redrive') {
      const already = await countAlreadyReset(txDb, runId, req.reason, ids);
      if (already > 0) {
        throw new RunInputError([
          `${already} account(s) of this cohort were already reset for ${JSON.stringify(req.reason)}: ` +
            'pass --notify-only to notify them without touching their PINs (a customer may have set a new one), ' +
            'or --reset-again to invalidate their PINs once more',
        ]);
      }
    }
    const created = await createRun(txDb, {
      id: runId,
      reason: req.reason,
      operator: req.operator,
      params,
      sourceRunId: req.sourceRunId,
      message: req.message,
    });
    if (!created) throw new RunInputError([`run ${runId} exists already`]);
    if (req.accountIds) await addCohortAccounts(txDb, runId, req.accountIds);
  });

  const handle = await client.workflow.start(pinResetRun, {
    workflowId: workflowIdForRun(runId),
    taskQueue: req.taskQueue,
    args: [{ runId, reason: req.reason, operator: req.operator, params }],
    // Shown in the workflow list: at most 200 bytes (UTF-8), so cut by bytes, not characters.
    staticSummary: truncateUtf8(`PIN reset ${runId}: ${oneLine(req.reason)}`, 200),
    staticDetails: staticDetails(runId, req, params),
    typedSearchAttributes: [
      { key: RUN_ID, value: runId },
      { key: PHASE, value: 'preparing' },
      { key: REASON, value: req.reason },
      { key: OPERATOR, value: req.operator },
      ...(req.sourceRunId ? [{ key: SOURCE_RUN_ID, value: req.sourceRunId }] : []),
    ],
  });
  return { runId, handle };
}
