// `npm run pinreset -- <command>` (tsx scripts/cli.ts): plan, start, watch, steer and report PIN-reset runs.
//
//   plan      [--cohort-file F] [--policy P] [--batch-size N] [--rate R] [--canary N] [--json]
//   start     --reason R [--operator O] [--cohort-file F [--allow-unknown]] [run options] [--run-id ID] [--wait] [--dry-run] [--json]
//   status    <runId> [--watch] [--interval S] [--timeout S] [--json]
//   pause     <runId> [--reason R]      resume <runId>      cancel <runId> [--reason R]      approve <runId>
//   set-rate  <runId> <rate>
//   list      [--limit N] [--json]
//   report    <runId> [--format csv|jsonl] [--out FILE] [--outcome sent,failed,...]
//   redrive   <runId> --reason R [run options] [--run-id ID] [--wait] [--json]
//
// Configuration from the environment (config/index.ts): DATABASE_URL for every command;
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, TEMPORAL_UI_URL (and TLS / API key)
// for the commands that talk to Temporal (start, status, pause, resume, cancel, approve, set-rate,
// redrive). plan, list, report and start --dry-run need only the database.
//
// Exit codes (scripts may rely on them):
//   0  done; with --wait, the run completed
//   1  runtime failure: unknown run id, Temporal or PostgreSQL unreachable, no worker answered,
//      the run is already finished (steering), or with --wait the run ended cancelled or failed
//   2  bad arguments or configuration (bad value, missing --reason, malformed run id, unreadable
//      or invalid cohort file, unknown ids without --allow-unknown, validator refused set-rate):
//      nothing was started or changed
// Errors are one line on stderr, `error: ...`, naming the argument, variable, file line or run;
// never a customer's data. This file is only the shell: the logic lives in scripts/lib/ and db/sql/.
import { Command, CommanderError, Option } from 'commander';
import type { Section } from '../config';
import { REPORT_OUTCOMES } from '../db/sql/read-report-page';
import { listRuns } from '../db/sql/list-runs';
import { DEFAULT_PARAMS } from '../domain/run';
import { EXIT, errorLine, exitCodeFor } from './lib/cli-errors';
import { CliContext, defaultOperator } from './lib/cli-context';
import { parse } from './lib/cli-options';
import { distinctSorted, readCohortFile } from './lib/cohort-file';
import { loadFileCohort, refuseUnknown, unknownRefusal, unknownSummary } from './lib/cohort';
import { formatPlan } from './lib/format-plan';
import { formatRunList, runListJson } from './lib/format-runs';
import { formatStatus, statusJson } from './lib/format-status';
import { planCohort, type CohortPlan, type PlanCohortSource } from './lib/plan-cohort';
import { redrive } from './lib/redrive';
import { REPORT_FORMATS, writeReport, writeReportFile, type ReportFormat } from './lib/report';
import { sendControl, setRate } from './lib/run-controls';
import { checkedParams, checkReason, paramsFromOptions, type RunOptionValues } from './lib/run-options';
import { readRunStatus } from './lib/run-status';
import { startRun } from './lib/start-run';
import { workflowUiUrl } from './lib/temporal-client';
import { waitForRun } from './lib/wait-run';
import { watchStatus } from './lib/watch-status';
import type { RunResult } from '../workflows/api';

const EXIT_CODES_HELP = `
Exit codes:
  0  done (with --wait: the run completed)
  1  runtime failure: unknown run id, Temporal or PostgreSQL unreachable, no worker answered,
     run already finished, or (--wait) the run ended cancelled or failed
  2  bad arguments or configuration: nothing was started or changed`;

const contexts: CliContext[] = [];
function context(sections: Section[]): CliContext {
  const ctx = new CliContext(sections);
  contexts.push(ctx);
  return ctx;
}
const DB_ONLY: Section[] = ['database'];
const DB_AND_TEMPORAL: Section[] = ['database', 'temporal'];

const print = (s: string) => process.stdout.write(`${s}\n`);
const printJson = (o: unknown) => print(JSON.stringify(o));

function runOptions(cmd: Command, withGuards: boolean): Command {
  cmd
    .option('--policy <policy>', `channel policy: sms_then_email, sms_only or email_only (default ${DEFAULT_PARAMS.policy})`, parse.policy)
    .option('--batch-size <n>', `accounts per batch, 1-10000 (default ${DEFAULT_PARAMS.batchSize})`, parse.batchSize)
    .option('--rate <r>', `notification ceiling for all workers, messages/s; 0 = unlimited (default ${DEFAULT_PARAMS.ratePerSecond})`, parse.rate)
    .option('--canary <n>', 'process the first N accounts, then wait for `approve` (default 0: no canary)', parse.canary);
  if (withGuards) {
    cmd
      .option('--concurrency <n>', `notify batches in flight, 1-200 (default ${DEFAULT_PARAMS.batchConcurrency})`, parse.concurrency)
      .option('--auto-pause-rate <share>', `pause the run when more than this share (0-1) of recent notification attempts failed (default ${DEFAULT_PARAMS.autoPauseFailureRate})`, parse.autoPauseRate)
      .option('--auto-pause-window <n>', `attempts the failure share is measured over (default ${DEFAULT_PARAMS.autoPauseWindow})`, parse.autoPauseWindow);
  }
  return cmd;
}

async function printPlan(opts: RunOptionValues & { cohortFile?: string; json?: boolean }, title: string): Promise<CohortPlan> {
  const params = checkedParams(paramsFromOptions(opts));
  const ctx = context(DB_ONLY);
  const db = await ctx.db();
  let source: PlanCohortSource = { kind: 'all_active' };
  if (opts.cohortFile) {
    const file = await readCohortFile(opts.cohortFile);
    const { ids, duplicates } = distinctSorted(file.ids);
    source = { kind: 'file', file, ids, duplicates };
  }
  const plan = await planCohort(db, source, params);
  if (opts.json) printJson(plan);
  else print(formatPlan(plan, title));
  return plan;
}

const program = new Command('pinreset')
  .description('Bulk PIN reset and customer notification runs on Temporal: plan, start, watch, steer, report, redrive.')
  .exitOverride()
  .addHelpText('after', EXIT_CODES_HELP);

// ---- plan -------------------------------------------------------------------------------------
runOptions(
  program
    .command('plan')
    .description('Count the cohort, its channel split (SMS / email / unreachable), batches and the time to notify at the rate. Changes nothing.')
    .option('--cohort-file <file>', 'explicit cohort: one account id per line, or a CSV with an id or account_id column (default: every active account)'),
  false,
)
  .option('--json', 'print the plan as one JSON object')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (o: RunOptionValues & { cohortFile?: string; json?: boolean }) => {
    await printPlan(o, 'Plan (nothing was changed)');
  });

// ---- start ------------------------------------------------------------------------------------
runOptions(
  program
    .command('start')
    .description('Start a run: invalidate the PIN of every account in the cohort, then notify each customer once. Prints the run id and its Web UI address.')
    .option('--reason <text>', 'incident or ticket id (required): recorded on every reset account and shown in the Web UI')
    .option('--operator <name>', 'who starts the run (default: $USER or the OS user)')
    .option('--cohort-file <file>', 'explicit cohort: one account id per line, or a CSV with an id or account_id column (default: every active account)')
    .option('--allow-unknown', 'accept cohort-file ids that are not in the accounts table: recorded in the ledger and skipped (account_deleted)'),
  true,
)
  .option('--run-id <id>', 'run id (default: generated); 3-63 of a-z, 0-9, -', parse.runId)
  .option('--wait', 'wait until the run ends (exit 0 if it completed, 1 if cancelled or failed)')
  .option('--dry-run', 'print the plan (as `plan`) and start nothing')
  .option('--json', 'print one JSON object')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (o: RunOptionValues & { reason?: string; operator?: string; cohortFile?: string; allowUnknown?: boolean; runId?: string; wait?: boolean; dryRun?: boolean; json?: boolean }) => {
    if (o.dryRun) {
      // The plan, then the same verdict on unknown ids that start would give.
      const plan = await printPlan(o, 'Dry run (nothing was started)');
      if (plan.cohort.unknown > 0 && !o.allowUnknown) throw unknownRefusal(o.cohortFile!, plan.cohort.unknown, plan.cohort.unknownLines);
      return;
    }
    // Everything that can be checked is checked before anything is created.
    const reason = checkReason(o.reason);
    const operator = o.operator?.trim() || defaultOperator();
    const overrides = paramsFromOptions(o);
    const params = checkedParams(overrides);
    const ctx = context(DB_AND_TEMPORAL);
    const cfg = ctx.cfg;
    const db = await ctx.db();
    let accountIds: number[] | undefined;
    let cohortNote = 'every active account';
    if (o.cohortFile) {
      const cohort = await loadFileCohort(db, o.cohortFile);
      refuseUnknown(cohort, o.allowUnknown === true);
      accountIds = cohort.ids;
      cohortNote = `${cohort.ids.length.toLocaleString('en-US')} accounts from ${o.cohortFile}`
        + (cohort.unknownIds.length ? ` (${unknownSummary(cohort)}: recorded, skipped as account_deleted)` : '')
        + (cohort.duplicates ? ` (${cohort.duplicates} repeated id(s) counted once)` : '');
    }
    const temporal = await ctx.temporalClient();
    // Only the options given: startRun fills in the defaults and the cohort kind (file or all_active).
    const { runId, handle } = await startRun(db, temporal.client, { runId: o.runId, reason, operator, params: overrides, accountIds, taskQueue: cfg.temporal.taskQueue });
    const url = workflowUiUrl(cfg.temporal, handle.workflowId);
    if (o.json) printJson({ runId, workflowId: handle.workflowId, webUi: url, reason, operator, cohort: accountIds ? 'file' : 'all_active', accounts: accountIds?.length ?? null, params: { ...params, cohort: accountIds ? 'file' : 'all_active' } });
    else {
      print(`Started run ${runId}`);
      print(`  web ui   : ${url}`);
      print(`  workflow : ${handle.workflowId} (task queue ${cfg.temporal.taskQueue})`);
      print(`  cohort   : ${cohortNote}`);
      print(`  reason   : ${reason}; operator ${operator}`);
      print(`  follow   : npm run pinreset -- status ${runId} --watch`);
    }
    if (o.wait) await waitAndReport(temporal.client, runId, o.json === true);
  });

async function waitAndReport(client: Parameters<typeof waitForRun>[0], runId: string, json: boolean): Promise<void> {
  const result: RunResult = await waitForRun(client, runId);
  if (json) printJson({ result });
  else {
    const c = result.counts;
    print(`Run ${runId} ${result.status}: reset ${c.reset}/${c.planned}, sms ${c.sentSms}, email ${c.sentEmail} (fell back ${c.fellBack}), unreachable ${c.unreachable}, failed ${c.failed}, pending ${c.pending}`);
  }
  if (result.status !== 'completed') process.exitCode = EXIT.FAILURE;
}

// ---- status -----------------------------------------------------------------------------------
program
  .command('status')
  .description('Progress of a run: counts by outcome, rate, ETA, paused and why, awaiting approval. Live from the workflow; from the last checkpoint in PostgreSQL when no worker answers.')
  .argument('<runId>', 'run id', parse.runId)
  .option('--watch', 'redraw until the run ends')
  .option('--interval <seconds>', 'redraw interval with --watch, 0.5-3600 (default 2)', parse.seconds(0.5, 3600), 2)
  .option('--timeout <seconds>', 'how long the live query may take before falling back to the checkpoint, 0.5-120 (default 5)', parse.seconds(0.5, 120), 5)
  .option('--json', 'print one JSON object (with --watch: one per redraw, one per line)')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { watch?: boolean; interval: number; timeout: number; json?: boolean }) => {
    const ctx = context(DB_AND_TEMPORAL);
    const cfg = ctx.cfg;
    const db = await ctx.db();
    // Temporal down is no failure here: the status then comes from PostgreSQL, and says so.
    const temporal = () => ctx.temporalClient(3_000).catch((err: Error) => ({ unavailable: `Temporal unreachable at ${cfg.temporal.address}: ${err.message}` }));
    const queryTimeoutMs = o.timeout * 1000;
    if (o.watch) {
      await watchStatus(db, temporal, runId, { intervalMs: o.interval * 1000, queryTimeoutMs, json: o.json === true });
      return;
    }
    const s = await readRunStatus(db, await temporal(), runId, { queryTimeoutMs });
    if (o.json) printJson(statusJson(s, Date.now()));
    else print(formatStatus(s, Date.now()));
  });

// ---- pause / resume / cancel / approve / set-rate -----------------------------------------------
program
  .command('pause')
  .description('Pause a run: no new batches start; batches in flight finish.')
  .argument('<runId>', 'run id', parse.runId)
  .option('--reason <text>', 'why (shown by status and recorded on the run)', parse.text('--reason', 200))
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { reason?: string }) => {
    const reason = o.reason ?? `paused by ${defaultOperator()}`;
    await control(runId, { kind: 'pause', reason });
    print(`Pause requested for run ${runId} (${reason}): batches in flight finish, no new ones start.`);
  });

program
  .command('resume')
  .description('Resume a paused run (also after an auto-pause; the failure rate is judged afresh).')
  .argument('<runId>', 'run id', parse.runId)
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string) => {
    await control(runId, { kind: 'resume' });
    print(`Resume requested for run ${runId}.`);
  });

program
  .command('cancel')
  .description('Cancel a run gracefully: batches in flight finish, nothing new starts; the run records where it stopped.')
  .argument('<runId>', 'run id', parse.runId)
  .option('--reason <text>', 'why (recorded on the run)', parse.text('--reason', 200))
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { reason?: string }) => {
    const reason = o.reason ?? `cancelled by ${defaultOperator()}`;
    await control(runId, { kind: 'cancel', reason });
    print(`Cancel requested for run ${runId} (${reason}).`);
  });

program
  .command('approve')
  .description('Approve the rest of a run after its canary accounts were processed.')
  .argument('<runId>', 'run id', parse.runId)
  .option('--operator <name>', 'who approves (default: $USER or the OS user)')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { operator?: string }) => {
    const by = o.operator?.trim() || defaultOperator();
    await control(runId, { kind: 'approve', by });
    print(`Run ${runId} approved by ${by}: the rest of the cohort proceeds.`);
  });

async function control(runId: string, c: Parameters<typeof sendControl>[3]): Promise<void> {
  const ctx = context(DB_AND_TEMPORAL);
  const db = await ctx.db();
  await sendControl(db, await ctx.temporalClient(), runId, c);
}

program
  .command('set-rate')
  .description('Change the notification rate of a running run (messages/s for all workers together; 0 = unlimited), through the workflow\'s validated Update.')
  .argument('<runId>', 'run id', parse.runId)
  .argument('<rate>', 'messages/s, 0-100000 (0 = unlimited)', parse.rate)
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, rate: number) => {
    const ctx = context(DB_AND_TEMPORAL);
      const db = await ctx.db();
    const r = await setRate(db, await ctx.temporalClient(), runId, rate);
    print(`Rate of run ${runId}: ${r.previous || 'unlimited'} -> ${r.current || 'unlimited'} messages/s`);
  });

// ---- list ---------------------------------------------------------------------------------------
program
  .command('list')
  .description('Recent runs, newest first: status, counts from the last checkpoint, start time, operator, reason.')
  .option('--limit <n>', 'runs to show, 1-1000 (default 20)', parse.positiveInt(1000), 20)
  .option('--json', 'print one JSON object per line')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (o: { limit: number; json?: boolean }) => {
    const ctx = context(DB_ONLY);
      const rows = await listRuns(await ctx.db(), o.limit);
    if (o.json) for (const r of rows) printJson(runListJson(r));
    else print(formatRunList(rows));
  });

// ---- report -------------------------------------------------------------------------------------
program
  .command('report')
  .description(`Per-account outcomes of a run, streamed: ${'account_id, outcome, channel, fell_back, provider_message_id, error_code, reset_at, notified_at, attempts'}. No phone, email or name.`)
  .argument('<runId>', 'run id', parse.runId)
  .addOption(new Option('--format <format>', 'csv or jsonl').default('csv').argParser(parse.oneOf(REPORT_FORMATS)))
  .option('--out <file>', 'write to this file (default: stdout); written as FILE.partial, renamed when complete')
  .option('--outcome <list>', `only these outcomes, comma-separated: ${REPORT_OUTCOMES.join(', ')}`, parse.listOf(REPORT_OUTCOMES))
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { format: ReportFormat; out?: string; outcome?: (typeof REPORT_OUTCOMES)[number][] }) => {
    const ctx = context(DB_ONLY);
      const db = await ctx.db();
    const opts = { format: o.format, outcomes: o.outcome };
    if (o.out) {
      const rows = await writeReportFile(db, runId, o.out, opts);
      process.stderr.write(`Wrote ${rows.toLocaleString('en-US')} rows to ${o.out}\n`);
    } else await writeReport(db, runId, process.stdout, opts);
  });

// ---- redrive ------------------------------------------------------------------------------------
runOptions(
  program
    .command('redrive')
    .description('Start a new run over the accounts whose notification failed in a finished run. Their PINs are NOT reset again (a customer may have set a new one); only the notification is retried. Accounts notified since by a later run are left out. Run options default to the source run\'s.')
    .argument('<runId>', 'the finished run whose failed notifications to retry', parse.runId)
    .option('--reason <text>', 'incident or ticket id (required)')
    .option('--operator <name>', 'who starts the redrive (default: $USER or the OS user)'),
  true,
)
  .option('--run-id <id>', 'id of the new run (default: generated)', parse.runId)
  .option('--wait', 'wait until the new run ends (exit 0 if it completed, 1 if cancelled or failed)')
  .option('--json', 'print one JSON object')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (sourceRunId: string, o: RunOptionValues & { reason?: string; operator?: string; runId?: string; wait?: boolean; json?: boolean }) => {
    const reason = checkReason(o.reason);
    const operator = o.operator?.trim() || defaultOperator();
    const overrides = paramsFromOptions(o);
    checkedParams(overrides);
    const ctx = context(DB_AND_TEMPORAL);
    const cfg = ctx.cfg;
    const db = await ctx.db();
    const temporal = await ctx.temporalClient();
    const r = await redrive(db, temporal.client, { sourceRunId, reason, operator, runId: o.runId, params: overrides, taskQueue: cfg.temporal.taskQueue });
    if (!r.started) {
      if (o.json) printJson(r);
      else print(`Nothing to redrive: run ${sourceRunId} has no failed notifications left to retry${r.handledSince ? ` (${r.handledSince} were notified since by a later run)` : ''}.`);
      return;
    }
    const url = workflowUiUrl(cfg.temporal, r.workflowId);
    if (o.json) printJson({ ...r, webUi: url });
    else {
      print(`Started redrive run ${r.runId} of run ${sourceRunId}`);
      print(`  web ui   : ${url}`);
      print(`  cohort   : ${r.accounts.toLocaleString('en-US')} accounts whose notification failed (PINs not reset again)${r.handledSince ? `; ${r.handledSince} left out, notified since by a later run` : ''}`);
      print(`  policy   : ${r.params.policy}; rate ${r.params.ratePerSecond || 'unlimited'} msg/s`);
      print(`  follow   : npm run pinreset -- status ${r.runId} --watch`);
    }
    if (o.wait) await waitAndReport(temporal.client, r.runId, o.json === true);
  });

// ---- main ---------------------------------------------------------------------------------------
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander printed its message (help, or `error: ...` naming the option); 0 only for help/version.
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  } else {
    process.stderr.write(`error: ${errorLine(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
} finally {
  await Promise.allSettled(contexts.map((c) => c.close()));
  // Whatever is still open (a gRPC channel winding down) must not keep a script waiting.
  setTimeout(() => process.exit(), 3_000).unref();
}

