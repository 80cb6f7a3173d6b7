// The handlers of `pinreset` commands (cli/main.ts holds their definitions and help). Loaded
// only once the arguments parsed, so `--help` and argument errors answer without loading the
// Temporal client, pg or the workflow code. Output: human text, or JSON with --json.
import { notifyBatchesFromEnv, type Section } from '../config';
import { listRuns } from '../db/sql/list-runs';
import { readLiveProgress } from '../db/sql/read-live-progress';
import { formatTopErrors } from '../domain/live-progress';
import type { ReportOutcome } from '../db/sql/read-report-page';
import type { RunResult } from '../workflows/api';
import { formatRate, type Rate } from '../domain/run';
import { EXIT, UsageError } from '../run-api/errors';
import { CliContext, defaultOperator } from './context';
import { distinctSorted, readCohortFile } from '../run-api/cohort-file';
import { loadFileCohort, refuseUnknown, unknownRefusal, unknownSummary } from '../run-api/cohort';
import { formatPlan } from './format-plan';
import { formatRunList, runListJson } from './format-runs';
import { formatStatus, statusJson } from './format-status';
import { planCohort, type CohortPlan, type PlanCohortSource } from '../run-api/plan-cohort';
import { finishRun } from '../run-api/finish-run';
import { redrive } from '../run-api/redrive';
import { writeReport, writeReportFile, type ReportFormat } from '../run-api/report';
import { sendControl, setRate, type Control } from '../run-api/run-controls';
import { checkedParams, checkReason, paramsFromOptions, type RunOptionValues } from './run-options';
import { readRunStatus } from '../run-api/run-status';
import { startRun } from '../run-api/start-run';
import { workflowUiUrl } from '../run-api/temporal-client';
import { waitForRun } from '../run-api/wait-run';
import { watchStatus } from './watch-status';

const contexts: CliContext[] = [];
function context(sections: Section[]): CliContext {
  const ctx = new CliContext(sections);
  contexts.push(ctx);
  return ctx;
}
/** Closes every pool and connection the commands opened. */
export async function closeAll(): Promise<void> {
  await Promise.allSettled(contexts.map((c) => c.close()));
}

const DB_ONLY: Section[] = ['database'];
const DB_AND_TEMPORAL: Section[] = ['database', 'temporal'];
const print = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
const printJson = (o: unknown) => print(JSON.stringify(o));

export type PlanOptions = RunOptionValues & { cohortFile?: string; json?: boolean };
export type StartOptions = PlanOptions & {
  reason?: string;
  operator?: string;
  allowUnknown?: boolean;
  runId?: string;
  wait?: boolean;
  dryRun?: boolean;
};
export type RedriveOptions = RunOptionValues & {
  reason?: string;
  operator?: string;
  runId?: string;
  wait?: boolean;
  json?: boolean;
};

export async function plan(o: PlanOptions, title = 'Plan (nothing was changed)'): Promise<CohortPlan> {
  // Notify batches in flight scale with PINRESET_WORKERS unless --concurrency says otherwise.
  const params = checkedParams({ batchConcurrency: notifyBatchesFromEnv(), ...paramsFromOptions(o) });
  const db = await context(DB_ONLY).db();
  let source: PlanCohortSource = { kind: 'all_active' };
  if (o.cohortFile) {
    const file = await readCohortFile(o.cohortFile);
    const { ids, duplicates } = distinctSorted(file.ids);
    source = { kind: 'file', file, ids, duplicates };
  }
  const result = await planCohort(db, source, params);
  if (o.json) printJson(result);
  else print(formatPlan(result, title));
  return result;
}

export async function start(o: StartOptions): Promise<void> {
  if (o.dryRun) {
    // The plan, then the same verdict on unknown ids that start would give.
    const p = await plan(o, 'Dry run (nothing was started)');
    if (p.cohort.unknown > 0 && !o.allowUnknown)
      throw unknownRefusal(o.cohortFile!, p.cohort.unknown, p.cohort.unknownLines);
    return;
  }
  // Everything that can be checked is checked before anything is created.
  const reason = checkReason(o.reason);
  const operator = o.operator?.trim() || defaultOperator();
  const overrides = { batchConcurrency: notifyBatchesFromEnv(), ...paramsFromOptions(o) };
  const params = checkedParams(overrides);
  const ctx = context(DB_AND_TEMPORAL);
  const cfg = ctx.cfg;
  const db = await ctx.db();
  let accountIds: number[] | undefined;
  let cohortNote = 'every account not closed or deleted';
  if (o.cohortFile) {
    const cohort = await loadFileCohort(db, o.cohortFile);
    refuseUnknown(cohort, o.allowUnknown === true);
    accountIds = cohort.ids;
    cohortNote =
      `${cohort.ids.length.toLocaleString('en-US')} accounts from ${o.cohortFile}` +
      (cohort.unknownIds.length ? ` (${unknownSummary(cohort)}: recorded, skipped as account_deleted)` : '') +
      (cohort.duplicates ? ` (${cohort.duplicates} repeated id(s) counted once)` : '');
  }
  const temporal = await ctx.temporalClient();
  // Only the options given: startRun fills in the defaults and the cohort kind (file or all_active).
  const { runId, handle } = await startRun(db, temporal.client, {
    runId: o.runId,
    reason,
    operator,
    params: overrides,
    accountIds,
    taskQueue: cfg.temporal.taskQueue,
    message: {
      ...cfg.message,
      smsFrom: cfg.sms.from,
      smsMessagingServiceSid: cfg.sms.messagingServiceSid,
      emailFrom: cfg.email.from || undefined,
    },
  });
  const url = workflowUiUrl(cfg.temporal, handle.workflowId);
  const cohort = accountIds ? 'file' : 'all_active';
  if (o.json)
    printJson({
      runId,
      workflowId: handle.workflowId,
      webUi: url,
      reason,
      operator,
      cohort,
      accounts: accountIds?.length ?? null,
      params: { ...params, cohort },
    });
  else {
    print(`Started run ${runId}`);
    print(`  web ui   : ${url}`);
    print(`  workflow : ${handle.workflowId} (task queue ${cfg.temporal.taskQueue})`);
    print(`  cohort   : ${cohortNote}`);
    print(`  reason   : ${reason}; operator ${operator}`);
    if (params.canary > 0)
      print(
        `  canary   : every PIN is invalidated at once; the first ${params.canary} accounts are notified, then notifications wait for \`pinreset approve ${runId}\``,
      );
    print(`  follow   : npm run pinreset -- status ${runId} --watch`);
  }
  if (o.wait) await waitAndReport(temporal.client, runId, o.json === true);
}

async function waitAndReport(
  client: Parameters<typeof waitForRun>[0],
  runId: string,
  json: boolean,
  redrive = false,
): Promise<void> {
  const result: RunResult = await waitForRun(client, runId);
  if (json) printJson({ result });
  else {
    const c = result.counts;
    // A redrive resets nothing: it says what it notified.
    const head = redrive
      ? `notified ${c.sentSms + c.sentEmail}/${c.planned} (PINs not reset again)`
      : `reset ${c.reset}/${c.planned}`;
    print(
      `Run ${runId} ${result.status}: ${head}, sms ${c.sentSms}, email ${c.sentEmail} (fell back ${c.fellBack}), unreachable ${c.unreachable}, failed ${c.failed}, pending ${c.pending}`,
    );
  }
  if (result.status !== 'completed') process.exitCode = EXIT.FAILURE;
}

export async function status(
  runId: string,
  o: { watch?: boolean; interval: number; timeout: number; json?: boolean },
): Promise<void> {
  const ctx = context(DB_AND_TEMPORAL);
  const db = await ctx.db();
  // Temporal down is no failure here: the status then comes from PostgreSQL, and says so.
  const temporal = () =>
    ctx.temporalClient(3_000).catch((err: Error) => {
      if (err instanceof UsageError) throw err;
      return { unavailable: `no Temporal client (${err.message})` };
    });
  const queryTimeoutMs = o.timeout * 1000;
  if (o.watch) {
    const last = await watchStatus(db, temporal, runId, {
      intervalMs: o.interval * 1000,
      queryTimeoutMs,
      json: o.json === true,
    });
    // Like --wait: a watch that ends on a cancelled or failed run exits 1.
    if (last.finished && last.status !== 'completed') process.exitCode = EXIT.FAILURE;
    return;
  }
  const s = await readRunStatus(db, await temporal(), runId, { queryTimeoutMs });
  if (o.json) printJson(statusJson(s, Date.now()));
  else print(formatStatus(s, Date.now()));
  // A workflow that cannot make progress is a failure, whatever the run row says.
  if (s.workflowProblem) process.exitCode = EXIT.FAILURE;
}

export async function control(runId: string, c: Control): Promise<void> {
  const ctx = context(DB_AND_TEMPORAL);
  const db = await ctx.db();
  const outcome = await sendControl(db, await ctx.temporalClient(), runId, c);
  if (outcome.note) return print(outcome.note);
  switch (c.kind) {
    case 'pause':
      return print(
        `Pause requested for run ${runId} (${c.reason}): sending stops within seconds; \`status\` shows what is still in flight.`,
      );
    case 'resume':
      return print(`Resume requested for run ${runId}.`);
    case 'cancel':
      return print(
        `Cancel requested for run ${runId} (${c.reason}): sending stops within seconds, then the run ends cancelled.`,
      );
    case 'approve':
      return print(
        `Run ${runId} approved by ${outcome.approval?.by ?? c.by} at ${new Date(outcome.approval?.atMs ?? Date.now()).toISOString()}: the rest of the cohort is notified.`,
      );
  }
}

export async function finish(runId: string, o: { wait?: boolean; json?: boolean }): Promise<void> {
  const ctx = context(DB_AND_TEMPORAL);
  const cfg = ctx.cfg;
  const db = await ctx.db();
  const temporal = await ctx.temporalClient();
  const handle = await finishRun(db, temporal.client, runId, cfg.temporal.taskQueue);
  const url = workflowUiUrl(cfg.temporal, handle.workflowId);
  if (o.json) printJson({ runId, workflowId: handle.workflowId, webUi: url, finishing: true });
  else {
    print(`Finishing run ${runId}: the rest is notified; PINs already reset stay as they are.`);
    print(`  web ui   : ${url}`);
    print(`  follow   : npm run pinreset -- status ${runId} --watch`);
  }
  if (o.wait) await waitAndReport(temporal.client, runId, o.json === true);
}

export async function changeRate(runId: string, rate: Rate): Promise<void> {
  const ctx = context(DB_AND_TEMPORAL);
  const db = await ctx.db();
  const r = await setRate(db, await ctx.temporalClient(), runId, rate);
  print(`Rate of run ${runId}: ${r.previous} -> ${r.current}${r.current === 'unlimited' ? '' : ' messages/s'}`);
}

export async function list(o: { limit: number; json?: boolean }): Promise<void> {
  const rows = await listRuns(await context(DB_ONLY).db(), o.limit);
  if (o.json) for (const r of rows) printJson(runListJson(r));
  else print(formatRunList(rows));
}

export async function report(
  runId: string,
  o: { format: ReportFormat; out?: string; outcome?: ReportOutcome[] },
): Promise<void> {
  const db = await context(DB_ONLY).db();
  const opts = { format: o.format, outcomes: o.outcome };
  if (o.out) {
    const rows = await writeReportFile(db, runId, o.out, opts);
    process.stderr.write(`Wrote ${rows.toLocaleString('en-US')} rows to ${o.out}\n`);
  } else await writeReport(db, runId, process.stdout, opts);
  // Why, at a glance: on stderr, so the report itself stays clean CSV / JSON Lines.
  const { topErrors } = await readLiveProgress(db, runId);
  if (topErrors.length) process.stderr.write(`Top error codes: ${formatTopErrors(topErrors)}\n`);
}

export async function redriveRun(sourceRunId: string, o: RedriveOptions): Promise<void> {
  // Default: the source run's reason (the incident), so a search by the incident finds both.
  const reason = o.reason === undefined ? undefined : checkReason(o.reason);
  const operator = o.operator?.trim() || defaultOperator();
  const overrides = paramsFromOptions(o);
  checkedParams(overrides);
  const ctx = context(DB_AND_TEMPORAL);
  const cfg = ctx.cfg;
  const db = await ctx.db();
  const temporal = await ctx.temporalClient();
  const r = await redrive(db, temporal.client, {
    sourceRunId,
    reason,
    operator,
    runId: o.runId,
    params: overrides,
    taskQueue: cfg.temporal.taskQueue,
  });
  if (!r.started) {
    if (o.json) printJson(r);
    else
      print(
        `Nothing to redrive: run ${sourceRunId} has no failed notifications left to retry${r.handledSince ? ` (${r.handledSince} were notified since by a later run)` : ''}.`,
      );
    return;
  }
  const url = workflowUiUrl(cfg.temporal, r.workflowId);
  if (o.json) printJson({ ...r, webUi: url });
  else {
    print(`Started redrive run ${r.runId} of run ${sourceRunId}${reason ? '' : " (reason: the source run's)"}`);
    print(`  web ui   : ${url}`);
    print(
      `  cohort   : ${r.accounts.toLocaleString('en-US')} accounts whose notification failed (PINs not reset again)${r.handledSince ? `; ${r.handledSince} left out, notified since by a later run` : ''}`,
    );
    print(`  policy   : ${r.params.policy}; rate ${formatRate(r.params.ratePerSecond)}`);
    print(`  follow   : npm run pinreset -- status ${r.runId} --watch`);
  }
  if (o.wait) await waitAndReport(temporal.client, r.runId, o.json === true, true);
}
