// `npm run bench`: benchmarks on the embedded local stack (Temporal dev server, PostgreSQL, local
// Twilio and SMTP in this process). Four modes:
//
//   default      the naive baseline (bench/naive-baseline.ts, no Temporal) and the pipeline
//                with one worker process, on the same seeded data, same local providers, no rate
//                limit: wall time, accounts/s, messages/s, peak RSS, Temporal actions per account,
//                and the ratio pipeline/baseline.
//   --exposure   the pipeline throttled to 100 msg/s: time from start to the last PIN of the cohort
//                invalidated; the run is stopped once the resets are done.
//   --rate <n>   rate accuracy: --workers worker processes, --seconds long, the rate changed
//                mid-run through the setRate update; achieved rate per 10-second window.
//   --scale <l>  the pipeline at several sizes: wall time, database growth, history events.
//
// Every mode ends with one line of JSON. Sizes: develop at 10k-50k accounts; 850,000 is the target.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { startStack, stopOnSignals, PROJECT_ROOT, type Stack } from '../stack';
import { createPool, type Db } from '../db/pool';
import { buildBundle } from '../workers/build-bundle';
import { startRun } from '../run-api/start-run';
import { DEFAULT_PARAMS, type Rate } from '../domain/run';
import { cancelSignal, setRateUpdate, type RunResult } from '../workflows/api';
import type { pinResetRun } from '../workflows/pin-reset-run';
import type { BaselineResult } from './naive-baseline';
import {
  cpuDelta,
  cpuSnapshot,
  fmt,
  pgStatsReset,
  threadCpuSampler,
  threadCpuSeconds,
  pgStatsTop,
  printPgStats,
  freshData,
  historyStats,
  loadAverage,
  mb,
  peakRssBytes as peakOf,
  relationSizes,
  s1,
  spawnTsx,
  BENCH_SEED,
  type Child,
  type CpuSnapshot,
  type HistoryStats,
} from './support';

function positiveInt(v: string): number {
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number > 0');
  return n;
}
function sizeList(v: string): number[] {
  const sizes = v.split(',').map((x) => positiveInt(x.trim().replace(/k$/i, '000')));
  if (sizes.length === 0) throw new InvalidArgumentError('give at least one size');
  return sizes;
}

interface Opts {
  accounts?: number;
  batchSize: number;
  concurrency: number;
  resetConcurrency?: number;
  exposure?: boolean;
  rate?: number;
  newRate?: number;
  changeAt?: number;
  workers: number;
  seconds: number;
  warmup: number;
  scale?: number[];
  only?: 'baseline' | 'pipeline';
  repeat: number;
  cpuProf?: boolean;
  pgStats?: boolean;
  nodeArgs?: string;
  heapMb: number;
  dataDir: string;
}

const program = new Command('bench')
  .description('Benchmarks of the pipeline on the embedded local stack (see BENCHMARKS.md)')
  .option('--accounts <n>', 'accounts to seed (default 850000; rate mode: enough for --seconds)', positiveInt)
  .option(
    '--batch-size <n>',
    `accounts per batch (default: the run default, ${DEFAULT_PARAMS.batchSize})`,
    positiveInt,
    DEFAULT_PARAMS.batchSize,
  )
  .option('--concurrency <n>', 'notify batches in flight', positiveInt, 8)
  .option(
    '--reset-concurrency <n>',
    `reset batches in flight (default: the run default, ${DEFAULT_PARAMS.resetConcurrency})`,
    positiveInt,
  )
  .option('--exposure', 'exposure window: notifications at --rate (default 100 msg/s), stop once every PIN is reset')
  .option('--rate <n>', 'rate accuracy mode: configured rate, msg/s for all workers together', positiveNumber)
  .option(
    '--new-rate <n>',
    'rate mode: rate set mid-run through the setRate update (default 1.5 x --rate)',
    positiveNumber,
  )
  .option(
    '--change-at <s>',
    'rate mode: seconds after the first message to change the rate (default --seconds / 2)',
    positiveNumber,
  )
  .option('--workers <n>', 'worker processes', positiveInt, 1)
  .option('--seconds <n>', 'rate mode: seconds to measure after the first message', positiveNumber, 60)
  .option('--warmup <s>', 'rate mode: seconds ignored after the first message and after the change', positiveNumber, 5)
  .option('--scale <sizes>', 'scale mode: comma-separated sizes, e.g. 100000,400000,850000', sizeList)
  .option('--only <which>', 'default mode: run only "baseline" or "pipeline"')
  .option(
    '--repeat <n>',
    'default mode: alternate the contenders n times and report the median of each',
    positiveInt,
    1,
  )
  .option('--cpu-prof', 'write V8 CPU profiles of the worker (and baseline) processes to <data-dir>/profiles')
  .option(
    '--pg-stats',
    'load pg_stat_statements (restarts the bench PostgreSQL) and print the top statements of each contender',
  )
  .option(
    '--heap-mb <n>',
    'V8 old-space cap of the worker and baseline processes (--max-old-space-size); 0 = Node default (sized from the host RAM)',
    (v) => (v === '0' ? 0 : positiveInt(v)),
    160,
  )
  .option(
    '--node-args <args>',
    'extra node options for the worker and baseline processes, e.g. "--max-semi-space-size=8"',
  )
  .option(
    '--data-dir <dir>',
    'where the bench stack keeps its data (wiped at start)',
    path.join(PROJECT_ROOT, '.data', 'bench'),
  )
  .parse();
const opts = program.opts<Opts>();

// ---- shared plumbing ---------------------------------------------------------------------------

interface Bench {
  stack: Stack;
  db: Db;
  client: Client;
  connection: Connection;
  bundle: string;
  dataDir: string;
  logFile: string;
  profileDir: string;
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

async function setUp(): Promise<Bench> {
  const dataDir = path.resolve(opts.dataDir);
  // A fresh Temporal database: workflows left over from an earlier bench would compete for the worker.
  await rm(path.join(dataDir, 'temporal.sqlite'), { force: true });
  await rm(path.join(dataDir, 'logs'), { recursive: true, force: true });
  await mkdir(path.join(dataDir, 'logs'), { recursive: true });
  const profileDir = path.join(dataDir, 'profiles');
  if (opts.cpuProf) {
    await rm(profileDir, { recursive: true, force: true });
    await mkdir(profileDir, { recursive: true });
  }
  log('Starting the local stack (Temporal dev server, PostgreSQL, local Twilio and SMTP)...');
  const [stack, bundle] = await Promise.all([
    startStack({
      dataDir,
      twilioThroughput: 'off' /* the baseline has no sender queue either: speed, not Twilio's pacing */,
    }),
    buildBundle(path.join(dataDir, 'workflow-bundle.js')),
  ]);
  stopOnSignals(stack);
  if (opts.pgStats) {
    const admin = createPool(stack.env.DATABASE_URL, 1);
    await admin.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
    await admin.query(`ALTER SYSTEM SET pg_stat_statements.track = 'all'`);
    await admin.query(`ALTER SYSTEM SET track_functions = 'all'`);
    await admin.end();
    await stack.postgres!.restart();
  }
  const db = createPool(stack.env.DATABASE_URL, 4);
  if (opts.pgStats) await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const connection = await Connection.connect({ address: stack.temporal!.address });
  const client = new Client({ connection, namespace: stack.temporal!.namespace });
  return {
    stack,
    db,
    client,
    connection,
    bundle,
    dataDir,
    logFile: path.join(dataDir, 'logs', 'children.log'),
    profileDir,
  };
}

async function tearDown(b: Bench): Promise<void> {
  await b.connection.close();
  await b.db.end();
  await b.stack.stop();
}

function childEnv(b: Bench, extra: Record<string, string> = {}): Record<string, string> {
  return { ...b.stack.env, WORKFLOW_BUNDLE_PATH: b.bundle, LOG_LEVEL: 'warn', ...extra };
}

function nodeArgs(b: Bench, label: string): string[] {
  const extra = opts.nodeArgs ? opts.nodeArgs.split(/\s+/).filter(Boolean) : [];
  if (opts.heapMb > 0) extra.unshift(`--max-old-space-size=${opts.heapMb}`);
  return opts.cpuProf
    ? [...extra, '--cpu-prof', `--cpu-prof-dir=${b.profileDir}`, `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`]
    : extra;
}

async function startWorkers(b: Bench, n: number, taskQueue: string): Promise<Child[]> {
  const workers = Array.from({ length: n }, (_, i) =>
    spawnTsx('workers/main.ts', {
      env: childEnv(b, { TEMPORAL_TASK_QUEUE: taskQueue }),
      nodeArgs: nodeArgs(b, `worker${i + 1}`),
      logFile: b.logFile,
      readyText: '"worker started"',
    }),
  );
  await Promise.all(workers.map((w) => w.ready));
  return workers;
}

/** Messages the local providers accepted so far. */
function sentSoFar(b: Bench): number {
  return b.stack.twilio!.stats().accepted + b.stack.smtp!.stats().accepted;
}

/** Prints a progress line every 10 s until stopped. */
function ticker(b: Bench, label: string, rssOf: () => number | undefined): () => void {
  const started = Date.now();
  let last = { t: started, n: sentSoFar(b) };
  const timer = setInterval(() => {
    const now = Date.now();
    const n = sentSoFar(b);
    const rate = (n - last.n) / ((now - last.t) / 1000);
    last = { t: now, n };
    log(
      `  [${label}] ${s1(now - started)} s: ${fmt(n)} messages, ${fmt(Math.round(rate))}/s now, RSS peak ${mb(rssOf()) ?? '?'} MB, load ${loadAverage()}`,
    );
  }, 10_000);
  return () => clearInterval(timer);
}

function freshProviders(b: Bench): void {
  b.stack.twilio!.reset();
  b.stack.smtp!.reset();
}

const runIdFor = (label: string) => `bench-${label}-${Date.now().toString(36)}`;

/** Stops a run gracefully: lift the rate so batches in flight finish fast, then the cancel signal. */
async function stopRun(
  handle: WorkflowHandle<typeof pinResetRun>,
  timeoutMs = 120_000,
): Promise<RunResult | undefined> {
  try {
    await handle.executeUpdate(setRateUpdate, { args: [0] });
    await handle.signal(cancelSignal, { reason: 'bench: measurement over' });
    return await Promise.race([
      handle.result(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs).unref()),
    ]);
  } catch (err) {
    log(`  could not stop the run gracefully (${(err as Error).message}); terminating it`);
    await handle.terminate('bench: measurement over').catch(() => undefined);
    return undefined;
  }
}

// ---- contenders --------------------------------------------------------------------------------

interface ContenderResult {
  name: 'baseline' | 'pipeline';
  cohort: number;
  wallMs: number;
  sentSms: number;
  sentEmail: number;
  unreachable: number;
  failed: number;
  pending: number;
  exposureWindowMs?: number;
  peakRssBytes?: number;
  /** Workers only: peak RSS once started, before the run. */
  rssAtReadyBytes?: number;
  processCpuS?: number;
  /** pg_total_relation_size growth during the run (compare mode). */
  dbGrowthBytes?: { ledger: number; checkpoints: number; accounts: number };
  /** CPU seconds by thread of the contender process (max over workers): main = the JS thread. */
  threads?: Record<string, number>;
  otherCpu: CpuSnapshot;
  history?: HistoryStats;
  duplicates: { sms: number; email: number };
  providerAccepted: number;
}

async function runBaseline(b: Bench): Promise<ContenderResult> {
  freshProviders(b);
  const runId = runIdFor('base');
  const cpu0 = cpuSnapshot(b.dataDir);
  const child = spawnTsx('bench/naive-baseline.ts', {
    args: [
      '--run-id',
      runId,
      '--batch-size',
      String(opts.batchSize),
      '--batch-concurrency',
      String(opts.concurrency),
      ...(opts.resetConcurrency ? ['--reset-concurrency', String(opts.resetConcurrency)] : []),
    ],
    env: childEnv(b),
    nodeArgs: nodeArgs(b, 'baseline'),
    logFile: b.logFile,
  });
  // The child reports its own peak (process.resourceUsage().maxRSS); this is only for the progress lines.
  const stopTicker = ticker(b, 'baseline', () => peakOf(child.pid));
  const threads = threadCpuSampler(child.pid);
  const { code } = await child.exited;
  threads.stop();
  stopTicker();
  const cpu1 = cpuSnapshot(b.dataDir);
  if (code !== 0) throw new Error(`naive baseline failed (code ${code}):\n${child.tail()}`);
  const line = child
    .stdout()
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"baseline"'));
  if (!line) throw new Error(`naive baseline printed no result:\n${child.tail()}`);
  const r = (JSON.parse(line) as { baseline: BaselineResult }).baseline;
  return {
    name: 'baseline',
    cohort: r.planned,
    wallMs: r.wallMs,
    sentSms: r.sentSms,
    sentEmail: r.sentEmail,
    unreachable: r.unreachable,
    failed: r.failed,
    pending: r.pending,
    exposureWindowMs: r.exposureWindowMs,
    peakRssBytes: r.maxRssBytes,
    processCpuS: (r.cpuUserMs + r.cpuSystemMs) / 1000,
    otherCpu: cpuDelta(cpu0, cpu1),
    threads: threads.last(),
    duplicates: { sms: b.stack.twilio!.duplicates().length, email: b.stack.smtp!.duplicates().length },
    providerAccepted: sentSoFar(b),
  };
}

interface PipelineRun {
  handle: WorkflowHandle<typeof pinResetRun>;
  runId: string;
  workers: Child[];
  started: number;
  cpu0: CpuSnapshot;
  taskQueue: string;
  firstRunId: string;
  /** Peak RSS of the workers once ready, before the run. */
  rssAtReady: number;
}

async function startPipeline(b: Bench, params: { ratePerSecond: Rate }, workers = opts.workers): Promise<PipelineRun> {
  freshProviders(b);
  const taskQueue = `bench-${Date.now().toString(36)}`;
  const procs = await startWorkers(b, workers, taskQueue);
  const rssAtReady = Math.max(...procs.map((w) => peakOf(w.pid) ?? 0));
  const cpu0 = cpuSnapshot(b.dataDir);
  const started = Date.now();
  const { runId, handle } = await startRun(b.db, b.client, {
    runId: runIdFor('pipe'),
    reason: 'BENCH',
    operator: 'bench',
    taskQueue,
    params: {
      ratePerSecond: params.ratePerSecond,
      batchSize: opts.batchSize,
      batchConcurrency: opts.concurrency,
      ...(opts.resetConcurrency ? { resetConcurrency: opts.resetConcurrency } : {}),
      // The bench measures sending: receipts are followed up for 10 s after the last send and an
      // undelivered SMS retried after 5 s, not the defaults (15 min, 5 min) a real run waits.
      delivery: { deadlineSeconds: 10, retryAfterSeconds: 5 },
    },
  });
  const firstRunId =
    'firstExecutionRunId' in handle ? String(handle.firstExecutionRunId) : (await handle.describe()).runId;
  return { handle, runId, workers: procs, started, cpu0, taskQueue, firstRunId, rssAtReady };
}

async function finishPipeline(
  b: Bench,
  p: PipelineRun,
  result: RunResult | undefined,
  wallMs: number,
): Promise<ContenderResult> {
  const cpu1 = cpuSnapshot(b.dataDir);
  const threads = p.workers
    .map((w) => threadCpuSeconds(w.pid))
    .reduce<Record<string, number> | undefined>(
      (acc, t) => (!t ? acc : !acc || (t.main ?? 0) > (acc.main ?? 0) ? t : acc),
      undefined,
    );
  const stopped = await Promise.all(p.workers.map((w) => w.stop()));
  const history = await historyStats(b.client, p.handle.workflowId, p.firstRunId);
  const counts = result?.counts;
  const { rows } = await b.db.query<{ planned: number }>('SELECT planned FROM runs WHERE id = $1', [p.runId]);
  return {
    name: 'pipeline',
    cohort: counts?.planned ?? rows[0]?.planned ?? 0,
    wallMs,
    sentSms: counts?.sentSms ?? 0,
    sentEmail: counts?.sentEmail ?? 0,
    unreachable: counts?.unreachable ?? 0,
    failed: counts?.failed ?? 0,
    pending: counts?.pending ?? 0,
    exposureWindowMs: result?.exposureWindowMs,
    peakRssBytes: Math.max(...stopped.map((s) => s.peakRssBytes ?? 0)) || undefined,
    rssAtReadyBytes: p.rssAtReady,
    processCpuS: stopped.reduce((n, s) => n + (s.cpuS ?? 0), 0),
    otherCpu: cpuDelta(p.cpu0, cpu1),
    history,
    threads,
    duplicates: { sms: b.stack.twilio!.duplicates().length, email: b.stack.smtp!.duplicates().length },
    providerAccepted: sentSoFar(b),
  };
}

async function runPipelineToEnd(b: Bench): Promise<ContenderResult> {
  const p = await startPipeline(b, { ratePerSecond: 'unlimited' });
  const stopTicker = ticker(b, 'pipeline', () => Math.max(...p.workers.map((w) => peakOf(w.pid) ?? 0)));
  const result = await p.handle.result();
  const wallMs = Date.now() - p.started;
  stopTicker();
  return finishPipeline(b, p, result, wallMs);
}

function describe(r: ContenderResult): Record<string, unknown> {
  const messages = r.sentSms + r.sentEmail;
  const secs = r.wallMs / 1000;
  return {
    cohort: r.cohort,
    wallS: s1(r.wallMs),
    accountsPerS: Math.round(r.cohort / secs),
    messagesPerS: Math.round(messages / secs),
    messages,
    sentSms: r.sentSms,
    sentEmail: r.sentEmail,
    unreachable: r.unreachable,
    failed: r.failed,
    pending: r.pending,
    exposureWindowS: r.exposureWindowMs !== undefined ? s1(r.exposureWindowMs) : null,
    peakRssMB: mb(r.peakRssBytes),
    ...(r.rssAtReadyBytes !== undefined ? { rssAtStartMB: mb(r.rssAtReadyBytes) } : {}),
    cpuS: {
      contender: r.processCpuS !== undefined ? +r.processCpuS.toFixed(1) : null,
      contenderMainThread: r.threads?.main ?? null,
      contenderThreads: r.threads ?? null,
      postgres: +r.otherCpu.postgres.toFixed(1),
      temporal: +r.otherCpu.temporal.toFixed(1),
      benchAndProviders: +r.otherCpu.bench.toFixed(1),
    },
    ...(r.history
      ? {
          temporalActions: r.history.actions,
          actionsPerAccount: +(r.history.actions / Math.max(1, r.cohort)).toFixed(5),
          workflowTasks: r.history.workflowTasksCompleted,
          activitiesScheduled: r.history.activitiesScheduled,
          historyEvents: r.history.events,
          continuedAsNew: r.history.continuedAsNew,
        }
      : {}),
    duplicateRecipients: r.duplicates,
    ...(r.dbGrowthBytes
      ? {
          dbGrowthMB: {
            ledger: mb(r.dbGrowthBytes.ledger),
            checkpointsKB: Math.round(r.dbGrowthBytes.checkpoints / 1024),
            accounts: mb(r.dbGrowthBytes.accounts),
          },
        }
      : {}),
  };
}

/** Ledger row updates so far and how many were HOT (pg_stat_user_tables; migration 012's fillfactor). */
async function ledgerUpdates(db: Db): Promise<{ upd: number; hot: number }> {
  // Backends report their counters at most once a second: let the last ones land.
  await new Promise((r) => setTimeout(r, 1500));
  const { rows } = await db.query<{ upd: string; hot: string }>(
    "SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'ledger'",
  );
  return { upd: Number(rows[0]?.upd ?? 0), hot: Number(rows[0]?.hot ?? 0) };
}
const hotShare = (a: { upd: number; hot: number }, b: { upd: number; hot: number }) => ({
  ledgerUpdates: b.upd - a.upd,
  hotUpdates: b.hot - a.hot,
  hotShare: +((b.hot - a.hot) / Math.max(1, b.upd - a.upd)).toFixed(3),
});

// ---- modes -------------------------------------------------------------------------------------

async function compareMode(b: Bench): Promise<Record<string, unknown>> {
  const accounts = opts.accounts ?? 850_000;
  const runs: ContenderResult[] = [];
  const pgStatements: Record<string, Awaited<ReturnType<typeof pgStatsTop>>> = {};
  // Contenders alternate (baseline, pipeline, baseline, ...) so a change in the machine's load
  // hits both; with --repeat the median run of each is reported.
  for (let round = 1; round <= opts.repeat; round++) {
    for (const name of ['baseline', 'pipeline'] as const) {
      if (opts.only && opts.only !== name) continue;
      const { seedMs } = await freshData(b.db, accounts);
      log(
        `Round ${round}/${opts.repeat}: seeded ${fmt(accounts)} accounts (seed ${BENCH_SEED}) in ${s1(seedMs)} s; running the ${name}... (load ${loadAverage()})`,
      );
      if (opts.pgStats) await pgStatsReset(b.db);
      const before = await relationSizes(b.db);
      const upd0 = await ledgerUpdates(b.db);
      const r = name === 'baseline' ? await runBaseline(b) : await runPipelineToEnd(b);
      log(`  ledger updates: ${JSON.stringify(hotShare(upd0, await ledgerUpdates(b.db)))}`);
      const after = await relationSizes(b.db);
      r.dbGrowthBytes = {
        ledger: after.ledger - before.ledger,
        checkpoints: after.checkpoints - before.checkpoints,
        accounts: after.accounts - before.accounts,
      };
      log(
        `  ${name}: ${s1(r.wallMs)} s, ${fmt(Math.round((r.sentSms + r.sentEmail) / (r.wallMs / 1000)))} msg/s, load ${loadAverage()}`,
      );
      runs.push(r);
      if (opts.pgStats) pgStatements[name] = await pgStatsTop(b.db);
    }
  }
  const median = (name: string): ContenderResult | undefined => {
    const mine = runs.filter((r) => r.name === name).sort((x, y) => x.wallMs - y.wallMs);
    return mine[Math.floor((mine.length - 1) / 2)];
  };
  const results = [median('baseline'), median('pipeline')].filter((r): r is ContenderResult => r !== undefined);
  if (opts.repeat > 1) {
    console.log(`
All runs (alternating; the median of each contender is reported below):`);
    for (const r of runs) {
      console.log(
        `  ${r.name.padEnd(9)} wall ${String(s1(r.wallMs)).padStart(7)} s  ${String(Math.round((r.sentSms + r.sentEmail) / (r.wallMs / 1000))).padStart(6)} msg/s  process CPU ${String(r.processCpuS?.toFixed(1)).padStart(6)} s  peak RSS ${mb(r.peakRssBytes)} MB`,
      );
    }
  }
  const out: Record<string, unknown> = {
    mode: 'compare',
    accounts,
    batchSize: opts.batchSize,
    concurrency: opts.concurrency,
    repeat: opts.repeat,
  };
  if (opts.repeat > 1)
    out.runs = runs.map((r) => ({
      name: r.name,
      wallS: s1(r.wallMs),
      cpuS: r.processCpuS,
      peakRssMB: mb(r.peakRssBytes),
    }));
  for (const r of results) out[r.name] = describe(r);
  const base = results.find((r) => r.name === 'baseline');
  const pipe = results.find((r) => r.name === 'pipeline');

  console.log(
    `\nBenchmark: ${fmt(accounts)} accounts seeded, no rate limit, ${opts.workers} worker, batch ${opts.batchSize}, ${opts.concurrency} notify batches in flight, ${opts.resetConcurrency ?? DEFAULT_PARAMS.resetConcurrency} reset batches in flight, heap cap ${opts.heapMb ? `${opts.heapMb} MB` : 'Node default'}`,
  );
  const row = (label: string, f: (d: Record<string, unknown>) => unknown) =>
    console.log(
      `  ${label.padEnd(28)}${results.map((r) => String(f(out[r.name] as Record<string, unknown>)).padStart(16)).join('')}`,
    );
  console.log(`  ${''.padEnd(28)}${results.map((r) => r.name.padStart(16)).join('')}`);
  row('cohort (active accounts)', (d) => fmt(d.cohort as number));
  row('wall time, s', (d) => d.wallS);
  row('accounts/s', (d) => fmt(d.accountsPerS as number));
  row('messages/s', (d) => fmt(d.messagesPerS as number));
  row('messages (sms + email)', (d) => fmt(d.messages as number));
  row('exposure window, s', (d) => d.exposureWindowS);
  row('peak RSS, MB', (d) => d.peakRssMB);
  row('  RSS once started, MB', (d) => d.rssAtStartMB ?? '-');
  row('CPU s: contender process', (d) => (d.cpuS as Record<string, unknown>).contender);
  row('  of which JS main thread', (d) => (d.cpuS as Record<string, unknown>).contenderMainThread);
  row('CPU s: PostgreSQL', (d) => (d.cpuS as Record<string, unknown>).postgres);
  row('CPU s: Temporal server', (d) => (d.cpuS as Record<string, unknown>).temporal);
  row('CPU s: bench + fake providers', (d) => (d.cpuS as Record<string, unknown>).benchAndProviders);
  row('Temporal actions', (d) => d.temporalActions ?? '-');
  row('  per account', (d) => d.actionsPerAccount ?? '-');
  row('ledger growth, MB', (d) => (d.dbGrowthMB as Record<string, unknown> | undefined)?.ledger ?? '-');
  row('history events (runs)', (d) =>
    d.historyEvents !== undefined ? `${d.historyEvents} (${(d.continuedAsNew as number) + 1})` : '-',
  );
  console.log(
    '  Temporal actions = WorkflowTaskCompleted + ActivityTaskScheduled events over the continue-as-new chain.',
  );

  for (const [name, stats] of Object.entries(pgStatements)) printPgStats(name, stats);

  if (base && pipe) {
    const ratio = pipe.wallMs / base.wallMs;
    const actionsPerAccount = pipe.history!.actions / Math.max(1, pipe.cohort);
    const targets = {
      ratio: { value: +ratio.toFixed(3), target: 1.25, met: ratio <= 1.25 },
      wallS: { value: s1(pipe.wallMs), target: 360, met: pipe.wallMs <= 360_000 },
      workerPeakRssMB: {
        value: mb(pipe.peakRssBytes),
        target: 300,
        met: (pipe.peakRssBytes ?? Infinity) <= 300 * 1024 * 1024,
      },
      actionsPerAccount: { value: +actionsPerAccount.toFixed(5), target: 0.01, met: actionsPerAccount <= 0.01 },
    };
    out.ratio = targets.ratio.value;
    out.targets = targets;
    const cpuRatio = (pipe.processCpuS ?? 0) / Math.max(0.001, base.processCpuS ?? 0);
    out.cpuRatio = +cpuRatio.toFixed(3);
    console.log(
      `\n  ratio pipeline/baseline (wall time): ${ratio.toFixed(3)}   (contender process CPU: ${cpuRatio.toFixed(3)})`,
    );
    console.log(`  targets (set for 850,000 accounts on 2 cores; this run: ${fmt(accounts)}):`);
    for (const [k, t] of Object.entries(targets))
      console.log(
        `    ${k.padEnd(20)} ${String(t.value).padStart(10)}  target ${t.target}  ${t.met ? 'met' : 'NOT met'}`,
      );
  }
  return out;
}

async function exposureMode(b: Bench): Promise<Record<string, unknown>> {
  const accounts = opts.accounts ?? 850_000;
  const rate = opts.rate ?? 100;
  const { seedMs } = await freshData(b.db, accounts);
  log(
    `Seeded ${fmt(accounts)} accounts in ${s1(seedMs)} s; starting the pipeline at ${rate} msg/s... (load ${loadAverage()})`,
  );
  const upd0 = await ledgerUpdates(b.db);
  const p = await startPipeline(b, { ratePerSecond: rate });
  const stopTicker = ticker(b, 'exposure', () => Math.max(...p.workers.map((w) => peakOf(w.pid) ?? 0)));
  let row: { started_at: Date; resets_done_at: Date; window_ms: number } | undefined;
  for (;;) {
    const { rows } = await b.db.query<{ started_at: Date; resets_done_at: Date | null; window_ms: number }>(
      `SELECT started_at, resets_done_at, extract(epoch FROM resets_done_at - started_at) * 1000 AS window_ms FROM runs WHERE id = $1`,
      [p.runId],
    );
    if (rows[0]?.resets_done_at) {
      row = rows[0] as typeof row;
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const seenAtMs = Date.now() - p.started;
  stopTicker();
  const messagesBeforeStop = sentSoFar(b);
  // The freeze in chunks (migration 012): start to cohort_frozen_at; and the reset updates' HOT share.
  const frozen = await b.db.query<{ s: number }>(
    'SELECT extract(epoch FROM cohort_frozen_at - started_at) AS s FROM runs WHERE id = $1',
    [p.runId],
  );
  const updates = hotShare(upd0, await ledgerUpdates(b.db));
  log(
    `  cohort frozen after ${frozen.rows[0]?.s ?? '?'} s; ledger updates to here: ${JSON.stringify(updates)} (load ${loadAverage()})`,
  );
  log(`  every PIN reset after ${s1(row!.window_ms)} s (runs.resets_done_at - started_at); stopping the run...`);
  const result = await stopRun(p.handle);
  const stoppedAfterMs = Date.now() - p.started;
  const r = await finishPipeline(b, p, result, stoppedAfterMs);
  const out = {
    mode: 'exposure',
    accounts,
    cohort: r.cohort,
    ratePerSecond: rate,
    batchSize: opts.batchSize,
    resetConcurrency: opts.resetConcurrency ?? DEFAULT_PARAMS.resetConcurrency,
    exposureWindowS: s1(Math.round(row!.window_ms)),
    exposureWindowFromResultS: result?.exposureWindowMs !== undefined ? s1(result.exposureWindowMs) : null,
    startToResetsDoneSeenS: s1(seenAtMs),
    messagesSentDuringResets: messagesBeforeStop,
    cohortFrozenAfterS: frozen.rows[0]?.s ?? null,
    ...updates,
    runStatus: result?.status ?? 'terminated',
    stopTookS: s1(stoppedAfterMs - seenAtMs),
    workerPeakRssMB: mb(r.peakRssBytes),
    target: { exposureWindowS: 60, met: row!.window_ms <= 60_000 },
  };
  console.log(
    `\nExposure window: ${fmt(r.cohort)} cohort accounts, notifications at ${rate} msg/s, batch ${opts.batchSize}, ${out.resetConcurrency} reset batches in flight`,
  );
  console.log(
    `  start to last PIN invalidated: ${out.exposureWindowS} s (runs.resets_done_at - runs.started_at; workflow result: ${out.exposureWindowFromResultS} s)`,
  );
  console.log(
    `  seen by the bench after       : ${out.startToResetsDoneSeenS} s from startRun (includes workflow start and cohort freeze)`,
  );
  console.log(`  messages sent meanwhile       : ${fmt(messagesBeforeStop)}`);
  console.log(
    `  run then stopped (${out.runStatus}) in ${out.stopTookS} s; target <= 60 s: ${out.target.met ? 'met' : 'NOT met'}`,
  );
  return out;
}

interface Window {
  fromS: number;
  toS: number;
  messages: number;
  rate: number;
  errorPct: number;
}

async function rateMode(b: Bench): Promise<Record<string, unknown>> {
  const rate = opts.rate!;
  const newRate = opts.newRate ?? Math.round(rate * 1.5);
  const changeAtS = opts.changeAt ?? opts.seconds / 2;
  // Enough accounts that the run outlasts the measurement (~95% of seeded accounts get a message).
  const needed =
    Math.ceil(((rate * changeAtS + newRate * Math.max(0, opts.seconds - changeAtS)) * 1.4) / 0.95) +
    20 * opts.batchSize;
  const accounts = opts.accounts ?? needed;
  const { seedMs } = await freshData(b.db, accounts);
  log(
    `Seeded ${fmt(accounts)} accounts in ${s1(seedMs)} s; ${opts.workers} workers at ${rate} msg/s, ${newRate} msg/s from ${changeAtS} s... (load ${loadAverage()})`,
  );
  const p = await startPipeline(b, { ratePerSecond: rate });
  const stopTicker = ticker(b, 'rate', () => Math.max(...p.workers.map((w) => peakOf(w.pid) ?? 0)));
  // t0: the first message accepted by either provider.
  while (sentSoFar(b) === 0) await new Promise((r) => setTimeout(r, 20));
  const t0 = firstSendMs(b);
  const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
  await sleepUntil(t0 + changeAtS * 1000);
  const tUpdate = Date.now();
  const answer = await p.handle.executeUpdate(setRateUpdate, { args: [newRate] });
  const tUpdated = Date.now();
  await sleepUntil(t0 + opts.seconds * 1000);
  const tEnd = Date.now();
  stopTicker();
  const times = sendTimes(b).filter((t) => t < tEnd);
  const result = await stopRun(p.handle);
  const r = await finishPipeline(b, p, result, Date.now() - p.started);

  const count = (from: number, to: number) => lowerBound(times, to) - lowerBound(times, from);
  const windows = (from: number, to: number, target: number): Window[] => {
    const out: Window[] = [];
    for (let w = from; w + 10_000 <= to; w += 10_000) {
      const n = count(w, w + 10_000);
      out.push({
        fromS: s1(w - t0),
        toS: s1(w + 10_000 - t0),
        messages: n,
        rate: n / 10,
        errorPct: +((100 * (n / 10 - target)) / target).toFixed(2),
      });
    }
    return out;
  };
  const before = windows(t0 + opts.warmup * 1000, tUpdate, rate);
  const after = windows(tUpdate + opts.warmup * 1000, tEnd, newRate);
  // In force: the first 2-second window starting at t >= the update whose rate is within 3% of the
  // new rate; the time to take effect is t - (update sent).
  let effectMs: number | undefined;
  for (let t = tUpdate; t + 2000 <= tEnd; t += 10) {
    if (count(t, t + 2000) / 2 >= newRate * 0.97) {
      effectMs = t - tUpdate;
      break;
    }
  }
  const all = [...before, ...after];
  const within3 = all.length > 0 && all.every((w) => Math.abs(w.errorPct) <= 3);
  console.log(
    `\nRate accuracy: ${opts.workers} workers, ${rate} msg/s, then ${newRate} msg/s (setRate update at ${s1(tUpdate - t0)} s); 10-s windows after ${opts.warmup} s warm-up`,
  );
  console.log('  window (s from first message)   messages   rate/s   target   error');
  for (const [w, target] of [...before.map((w) => [w, rate] as const), ...after.map((w) => [w, newRate] as const)]) {
    console.log(
      `  ${`${w.fromS}-${w.toS}`.padEnd(32)}${String(w.messages).padStart(8)}${w.rate.toFixed(1).padStart(9)}${String(target).padStart(9)}${`${w.errorPct > 0 ? '+' : ''}${w.errorPct}%`.padStart(9)}`,
    );
  }
  console.log(`  every window within 3%: ${within3 ? 'yes' : 'NO'}`);
  console.log(
    `  setRate update: answered in ${tUpdated - tUpdate} ms (${JSON.stringify(answer)}); new rate in force after ${effectMs !== undefined ? `${effectMs} ms` : 'never (within the run)'} (target <= 5000 ms)`,
  );
  return {
    mode: 'rate',
    workers: opts.workers,
    accounts,
    rate,
    newRate,
    changeAtS: s1(tUpdate - t0),
    windows: { before, after },
    within3pct: within3,
    maxAbsErrorPct: Math.max(0, ...all.map((w) => Math.abs(w.errorPct))),
    updateRoundTripMs: tUpdated - tUpdate,
    effectMs: effectMs ?? null,
    effectWithin5s: effectMs !== undefined && effectMs <= 5000,
    workerPeakRssMB: mb(r.peakRssBytes),
    runStatus: result?.status ?? 'terminated',
  };
}

function sendTimes(b: Bench): number[] {
  const t = b.stack.twilio!.messages().map((m) => m.receivedAtMs);
  for (const m of b.stack.smtp!.messages()) t.push(m.receivedAt.getTime());
  return t.sort((x, y) => x - y);
}
function firstSendMs(b: Bench): number {
  return sendTimes(b)[0] ?? Date.now();
}
function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function scaleMode(b: Bench): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown>[] = [];
  for (const size of opts.scale!) {
    const { seedMs } = await freshData(b.db, size);
    const sizeBefore = await relationSizes(b.db);
    log(`Seeded ${fmt(size)} accounts in ${s1(seedMs)} s; running the pipeline... (load ${loadAverage()})`);
    const r = await runPipelineToEnd(b);
    const sizeAfter = await relationSizes(b.db);
    const h = r.history!;
    rows.push({
      accounts: size,
      cohort: r.cohort,
      wallS: s1(r.wallMs),
      msPerAccount: +(r.wallMs / r.cohort).toFixed(4),
      messagesPerS: Math.round((r.sentSms + r.sentEmail) / (r.wallMs / 1000)),
      ledgerGrowthMB: mb(sizeAfter.ledger - sizeBefore.ledger),
      checkpointsGrowthKB: Math.round((sizeAfter.checkpoints - sizeBefore.checkpoints) / 1024),
      accountsGrowthMB: mb(sizeAfter.accounts - sizeBefore.accounts),
      ledgerBytesPerAccount: Math.round((sizeAfter.ledger - sizeBefore.ledger) / r.cohort),
      historyEvents: h.events,
      eventsPerRun: h.eventsPerRun,
      continuedAsNew: h.continuedAsNew,
      eventsPer1000Accounts: +((1000 * h.events) / r.cohort).toFixed(2),
      actionsPerAccount: +(h.actions / r.cohort).toFixed(5),
      maxHistoryKB: Math.round(h.maxHistoryBytes / 1024),
      workerPeakRssMB: mb(r.peakRssBytes),
      load: loadAverage(),
    });
  }
  console.log('\nScale: one worker, no rate limit');
  console.log('  accounts    cohort   wall s  ms/acct  msg/s  ledger MB  ckpt KB  B/acct  events  ev/1k  CAN  RSS MB');
  for (const x of rows) {
    console.log(
      `  ${[
        fmt(x.accounts as number).padStart(9),
        fmt(x.cohort as number).padStart(9),
        String(x.wallS).padStart(8),
        String(x.msPerAccount).padStart(8),
        String(x.messagesPerS).padStart(6),
        String(x.ledgerGrowthMB).padStart(10),
        String(x.checkpointsGrowthKB).padStart(8),
        String(x.ledgerBytesPerAccount).padStart(7),
        String(x.historyEvents).padStart(7),
        String(x.eventsPer1000Accounts).padStart(6),
        String(x.continuedAsNew).padStart(4),
        String(x.workerPeakRssMB).padStart(7),
      ].join(' ')}`,
    );
  }
  return { mode: 'scale', sizes: rows };
}

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const b = await setUp();
  let out: Record<string, unknown>;
  try {
    if (opts.scale) out = await scaleMode(b);
    else if (opts.exposure) out = await exposureMode(b);
    else if (opts.rate !== undefined) out = await rateMode(b);
    else out = await compareMode(b);
  } finally {
    await tearDown(b).catch(() => undefined);
  }
  const machine = {
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadBefore,
    loadAfter: loadAverage(),
  };
  if (opts.cpuProf) console.log(`\nCPU profiles: ${b.profileDir}`);
  console.log(
    `Machine: ${machine.cpus} cores, ${machine.memGiB} GiB, load average before ${loadBefore}, after ${machine.loadAfter}`,
  );
  console.log(JSON.stringify({ ...out, heapMb: opts.heapMb, machine }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
