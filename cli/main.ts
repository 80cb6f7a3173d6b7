// `npm run pinreset -- <command>` (tsx cli/main.ts): plan, start, watch, steer and report PIN-reset runs.
//
//   plan      [--cohort-file F] [--policy P] [--batch-size N] [--rate R] [--canary N] [--json]
//   start     --reason R [--operator O] [--cohort-file F [--allow-unknown]] [run options] [--run-id ID] [--wait] [--dry-run] [--json]
//   status    <runId> [--watch] [--interval S] [--timeout S] [--json]
//   pause     <runId> [--reason R]      resume <runId>      cancel <runId> [--reason R]      approve <runId>
//   set-rate  <runId> <rate>
//   list      [--limit N] [--json]
//   report    <runId> [--format csv|jsonl] [--out FILE] [--outcome sent,failed,...]
//   redrive   <runId> --reason R [run options] [--run-id ID] [--wait] [--json]
//   finish    <runId> [--wait] [--json]   (a cancelled or terminated run: notify the rest, no second reset)
//   senders list [--json]      senders set-rate <sender> <rate> [--create]   (send budgets shared by all runs)
//
// Configuration from the environment (config/index.ts), completed by `.env` in the working
// directory or the file PINRESET_ENV_FILE names (the environment wins): DATABASE_URL for every command;
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
// never a customer's data. This file is only the shell: the logic lives in cli/ (commands, options, formatters), run-api/ and db/sql/.
import { Command, CommanderError, Option } from 'commander';
import { REPORT_OUTCOMES, type ReportOutcome } from '../db/sql/read-report-page';
import { DEFAULT_DELIVERY, DEFAULT_PARAMS, MIN_RATE, type Rate } from '../domain/run';
import { EXIT, errorLine, exitCodeFor } from '../run-api/errors';
import { parse } from './options';
import type { PlanOptions, RedriveOptions, StartOptions } from './commands';
import { REPORT_FORMATS, type ReportFormat } from '../run-api/report';

// Handlers load on first use: help and argument errors answer without Temporal, pg or workflow code.
let loaded: Promise<typeof import('./commands')> | undefined;
const commands = () => (loaded ??= import('./commands'));
const operator = async () => (await import('./context')).defaultOperator();

/** Exit codes, with the lines particular to a command. */
function exitCodes(...extra: string[]): string {
  return [
    '',
    'Exit codes:',
    '  0  done',
    '  1  runtime failure: unknown run id, Temporal or PostgreSQL unreachable, no worker answered,',
    '     run already finished',
    ...extra.map((l) => `     ${l}`),
    '  2  bad arguments or configuration: nothing was started or changed',
  ].join('\n');
}
const EXIT_CODES_HELP = exitCodes();
const EXIT_CODES_WAIT = exitCodes(
  'with --wait: 1 also when the run ended cancelled or failed (0 only if it completed)',
);

/**
 * Run options; `defaults` says where unset ones come from: the documented defaults (plan, start)
 * or the source run (redrive). Commander adds no "(default: ...)" of its own: none is set here.
 */
function runOptions(cmd: Command, withGuards: boolean, defaults: 'fixed' | 'source' = 'fixed'): Command {
  const d = (v: unknown) => (defaults === 'source' ? "(default: the source run's)" : `(default ${String(v)})`);
  cmd
    .option(
      '--policy <policy>',
      `channel policy: sms_then_email, sms_only or email_only ${d(DEFAULT_PARAMS.policy)}`,
      parse.policy,
    )
    .option('--batch-size <n>', `accounts per batch, 1-10000 ${d(DEFAULT_PARAMS.batchSize)}`, parse.batchSize)
    .option(
      '--rate <r>',
      `notification ceiling for all workers, messages/s (${MIN_RATE}-100000) or 'unlimited' ${d(DEFAULT_PARAMS.ratePerSecond)}`,
      parse.rate,
    )
    .option(
      '--canary <n>',
      'canary: every PIN is invalidated at once, but only the first N accounts are notified until `approve` (default 0: no canary)',
      parse.canary,
    );
  if (withGuards) {
    cmd
      .option(
        '--concurrency <n>',
        `notify batches in flight, 1-200 ${defaults === 'source' ? d(0) : `(default 2 x PINRESET_WORKERS, at least ${DEFAULT_PARAMS.batchConcurrency})`}`,
        parse.concurrency,
      )
      .option(
        '--auto-pause-rate <share>',
        `pause the run when more than this share (0-1) of the recent notification attempts failed (over the window below, across batches; within a batch from its 100th attempt on) ${d(DEFAULT_PARAMS.autoPauseFailureRate)}`,
        parse.autoPauseRate,
      )
      .option(
        '--auto-pause-window <n>',
        `attempts the failure share is measured over, across batches ${d(DEFAULT_PARAMS.autoPauseWindow)}`,
        parse.autoPauseWindow,
      )
      .option(
        '--db-stall-pause <seconds>',
        `pause the run when a database step keeps failing this long, 2-86400 ${d(DEFAULT_PARAMS.dbStallPauseSeconds)}`,
        parse.dbStallPause,
      )
      .option(
        '--ambiguous <policy>',
        `a send that may have reached the provider and that no lookup resolved: resend (after two negative lookups a hold period apart) or hold (report it, never resend) ${d(DEFAULT_PARAMS.ambiguous)}`,
        parse.oneOf(['resend', 'hold'] as const),
      )
      .option(
        '--hold <seconds>',
        `wait between a possible send and a lookup that may count as negative; longer than the provider's list lag ${d(DEFAULT_PARAMS.holdMs / 1000)}`,
        parse.seconds(1, 86_400),
      )
      .option(
        '--receipt-deadline <seconds>',
        `SMS with no final delivery receipt this long after sending are asked about by SID once, then recorded unknown ${d(DEFAULT_DELIVERY.deadlineSeconds)}`,
        parse.receiptDeadline,
      )
      .option(
        '--retry-after <seconds>',
        `an SMS undelivered with 30003 (handset unreachable) is sent once more this long after its receipt ${d(DEFAULT_DELIVERY.retryAfterSeconds)}`,
        parse.retryAfter,
      )
      .option(
        '--filtered-pause-rate <share>',
        `pause the run when more than this share (0-1) of the recent final receipts were carrier-filtered (30007/30034) ${d(DEFAULT_DELIVERY.filteredPauseRate)}`,
        parse.filteredPauseRate,
      )
      .option('--notify-only', 'accounts already reset for the same --reason: notify them without touching their PINs')
      .option('--reset-again', 'accounts already reset for the same --reason: invalidate their PINs once more');
  }
  return cmd;
}

const program = new Command('pinreset')
  .description('Bulk PIN reset and customer notification runs on Temporal: plan, start, watch, steer, report, redrive.')
  .exitOverride()
  .addHelpText('after', EXIT_CODES_HELP);

// ---- plan -------------------------------------------------------------------------------------
runOptions(
  program
    .command('plan')
    .description(
      'Count the cohort, its channel split (SMS / email / unreachable), batches and the time to notify at the rate. Changes nothing.',
    )
    .option(
      '--cohort-file <file>',
      'explicit cohort: one account id per line, or a CSV with an id or account_id column (default: every account not closed or deleted: active and suspended)',
    ),
  false,
)
  .option('--json', 'print the plan as one JSON object')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (o: PlanOptions) => {
    await (await commands()).plan(o);
  });

// ---- start ------------------------------------------------------------------------------------
runOptions(
  program
    .command('start')
    .description(
      'Start a run: invalidate the PIN of every account in the cohort, then notify each customer once. Prints the run id and its Web UI address.',
    )
    .option(
      '--reason <text>',
      'incident or ticket id (required): recorded on every reset account and shown in the Web UI',
    )
    .option('--operator <name>', 'who starts the run (default: $USER or the OS user)')
    .option(
      '--cohort-file <file>',
      'explicit cohort: one account id per line, or a CSV with an id or account_id column (default: every account not closed or deleted: active and suspended)',
    )
    .option(
      '--allow-unknown',
      'accept cohort-file ids that are not in the accounts table: recorded in the ledger and skipped (account_deleted)',
    ),
  true,
)
  .option('--run-id <id>', 'run id (default: generated); 3-63 of a-z, 0-9, -', parse.runId)
  .option('--wait', 'wait until the run ends (exit 0 if it completed, 1 if cancelled or failed)')
  .option('--dry-run', 'print the plan (as `plan`) and start nothing')
  .option('--json', 'print one JSON object')
  .addHelpText('after', EXIT_CODES_WAIT)
  .action(async (o: StartOptions) => (await commands()).start(o));

// ---- finish -----------------------------------------------------------------------------------
program
  .command('finish')
  .description(
    'Finish a cancelled, failed or terminated run: the same run carries on where it stopped, with its references. PINs already reset are not reset again; rows left sending are reconciled, not re-sent.',
  )
  .argument('<runId>', 'run id', parse.runId)
  .option('--wait', 'wait until the run ends (exit 0 if it completed)')
  .option('--json', 'print one JSON object')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { wait?: boolean; json?: boolean }) => (await commands()).finish(runId, o));

// ---- status -----------------------------------------------------------------------------------
program
  .command('status')
  .description(
    'Progress of a run: counts by outcome read from the ledger, messages/s sent over the last minute beside the ceiling, ETA, accounts in flight, a stall warning, top error codes, paused and why, awaiting approval. State live from the workflow; from the last checkpoint in PostgreSQL when no worker answers.',
  )
  .argument('<runId>', 'run id', parse.runId)
  .option('--watch', 'redraw until the run ends; each frame shows the time of its reading')
  .option('--interval <seconds>', 'redraw interval with --watch, 0.5-3600', parse.seconds(0.5, 3600), 2)
  .option(
    '--timeout <seconds>',
    'how long the live query may take before falling back to the checkpoint, 0.5-120',
    parse.seconds(0.5, 120),
    5,
  )
  .option('--json', 'print one JSON object (with --watch: one per redraw, one per line)')
  .addHelpText(
    'after',
    exitCodes(
      "1 also when the run's workflow cannot make progress (its tasks fail), or --watch ended",
      'on a cancelled or failed run',
    ),
  )
  .action(async (runId: string, o: { watch?: boolean; interval: number; timeout: number; json?: boolean }) =>
    (await commands()).status(runId, o),
  );

// ---- pause / resume / cancel / approve / set-rate -----------------------------------------------
program
  .command('pause')
  .description(
    'Pause a run: sending stops within seconds on every worker, batches in flight included; what was claimed and not sent goes back in line. `status` shows what is still in flight.',
  )
  .argument('<runId>', 'run id', parse.runId)
  .option('--reason <text>', 'why (shown by status and recorded on the run)', parse.text('--reason', 200))
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { reason?: string }) =>
    (await commands()).control(runId, { kind: 'pause', reason: o.reason ?? `paused by ${await operator()}` }),
  );

program
  .command('resume')
  .description(
    'Resume a paused run where it stopped (also after an auto-pause; the failure rate is judged afresh). A run that is not paused is left as it is, and the command says so.',
  )
  .argument('<runId>', 'run id', parse.runId)
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string) => (await commands()).control(runId, { kind: 'resume' }));

program
  .command('cancel')
  .description(
    'Cancel a run: sending stops within seconds (as pause), nothing new starts; the run ends cancelled and records where it stopped. Accounts not reached stay pending.',
  )
  .argument('<runId>', 'run id', parse.runId)
  .option('--reason <text>', 'why (recorded on the run)', parse.text('--reason', 200))
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { reason?: string }) =>
    (await commands()).control(runId, { kind: 'cancel', reason: o.reason ?? `cancelled by ${await operator()}` }),
  );

program
  .command('approve')
  .description(
    'Approve the notifications of the rest of the cohort once the canary accounts are notified. Refused until then; recorded with who and when; a second approve changes nothing and says who approved.',
  )
  .argument('<runId>', 'run id', parse.runId)
  .option('--operator <name>', 'who approves (default: $USER or the OS user)')
  .addHelpText(
    'after',
    exitCodes('1 also when the approval is refused: the canary is not done yet, or the run has no canary'),
  )
  .action(async (runId: string, o: { operator?: string }) =>
    (await commands()).control(runId, { kind: 'approve', by: o.operator?.trim() || (await operator()) }),
  );

program
  .command('set-rate')
  .description(
    "Change the notification rate of a running run (messages/s for all workers together, or 'unlimited'), through the workflow's validated Update. 0 is refused: to stop sending, pause.",
  )
  .argument('<runId>', 'run id', parse.runId)
  // Any number parses; the range check is the workflow validator's own (rateProblems), message and all.
  .argument('<rate>', `messages/s, ${MIN_RATE}-100000, or 'unlimited'`, parse.rateOrUnlimited)
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, rate: Rate) => (await commands()).changeRate(runId, rate));

// ---- list ---------------------------------------------------------------------------------------
program
  .command('list')
  .description(
    'Recent runs, newest first: status (paused and cancelling included), phase, progress and counts from the last checkpoint, start time, operator, reason; redrives name their source run.',
  )
  .option('--limit <n>', 'runs to show, 1-1000', parse.positiveInt(1000), 20)
  .option('--json', 'print one JSON object per line')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (o: { limit: number; json?: boolean }) => (await commands()).list(o));

// ---- report -------------------------------------------------------------------------------------
program
  .command('report')
  .description(
    `Per-account outcomes of a run, streamed: ${'account_id, outcome, channel, fell_back, provider_message_id, error_code, reset_at, notified_at, attempts'}. No phone, email or name. The top error codes with their counts follow on stderr.`,
  )
  .argument('<runId>', 'run id', parse.runId)
  .addOption(new Option('--format <format>', 'csv or jsonl').default('csv').argParser(parse.oneOf(REPORT_FORMATS)))
  .option('--out <file>', 'write to this file (default: stdout); written as FILE.partial, renamed when complete')
  .option(
    '--outcome <list>',
    `only these outcomes, comma-separated: ${REPORT_OUTCOMES.join(', ')}`,
    parse.listOf(REPORT_OUTCOMES),
  )
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (runId: string, o: { format: ReportFormat; out?: string; outcome?: ReportOutcome[] }) =>
    (await commands()).report(runId, o),
  );

// ---- redrive ------------------------------------------------------------------------------------
runOptions(
  program
    .command('redrive')
    .description(
      "Start a new run over the accounts whose notification failed in a finished run. Their PINs are NOT reset again (a customer may have set a new one); only the notification is retried. Accounts notified since by a later run are left out. Run options default to the source run's.",
    )
    .argument('<runId>', 'the finished run whose failed notifications to retry', parse.runId)
    .option('--reason <text>', "incident or ticket id (default: the source run's, so the incident finds both)")
    .option('--operator <name>', 'who starts the redrive (default: $USER or the OS user)'),
  true,
  'source',
)
  .option('--run-id <id>', 'id of the new run (default: generated)', parse.runId)
  .option('--wait', 'wait until the new run ends (exit 0 if it completed, 1 if cancelled or failed)')
  .option('--json', 'print one JSON object')
  .addHelpText('after', EXIT_CODES_WAIT)
  .action(async (sourceRunId: string, o: RedriveOptions) => (await commands()).redriveRun(sourceRunId, o));

// ---- senders ------------------------------------------------------------------------------------
const senders = program
  .command('senders')
  .description(
    'Send budgets per sender (SMS From number or Messaging Service, email relay), shared by every run and worker: list them, change one live.',
  )
  .addHelpText('after', EXIT_CODES_HELP);
senders
  .command('list')
  .description(
    'Every sender with its budget (messages/s), the share withheld after provider throttling, and its use now: slots handed out ahead (sending at the full budget) or idle since.',
  )
  .option('--json', 'print one JSON object per sender, one per line')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (o: { json?: boolean }) => (await import('./sender-budgets')).listSenders(o));
senders
  .command('set-rate')
  .description(
    "Change a sender's budget live, for all runs together (each run's own rate still applies within it). 'unlimited' for no ceiling; 0 and rates below the minimum are refused: to stop sending, pause the runs.",
  )
  .argument('<sender>', 'sender key as `senders list` shows it, e.g. sms:+15550000000')
  .argument('<rate>', `messages/s, ${MIN_RATE}-100000, or 'unlimited'`)
  .option('--create', 'set the budget of a sender that has not sent yet')
  .addHelpText('after', exitCodes('1 also for an unknown sender (without --create)'))
  .action(async (sender: string, rate: string, o: { create?: boolean }) =>
    (await import('./sender-budgets')).setSenderBudget(sender, rate, o),
  );

// ---- main ---------------------------------------------------------------------------------------
try {
  // `.env` (or PINRESET_ENV_FILE) fills in what the environment does not set.
  (await import('../config/dotenv')).loadDotEnv();
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander printed its message (help, or `error: ...` naming the option); 0 only for help/version.
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  } else if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
    // The reader closed the pipe (`report ... | head`): it has what it wanted.
    process.exitCode = EXIT.OK;
  } else {
    process.stderr.write(`error: ${errorLine(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
} finally {
  if (loaded) await (await loaded.catch(() => undefined))?.closeAll();
  // Whatever is still open (a gRPC channel winding down) must not keep a script waiting.
  setTimeout(() => process.exit(), 3_000).unref();
}
