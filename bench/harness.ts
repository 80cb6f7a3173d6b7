// The bench's plumbing: the local stack, worker processes, providers reset between contenders, a
// progress ticker, and stopping a run.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { startStack, stopOnSignals, type Stack } from '../stack';
import { createPool, type Db } from '../db/pool';
import { buildBundle } from '../workers/build-bundle';
import { cancelSignal, type RunResult } from '../workflows/api';
import type { pinResetRun } from '../workflows/pin-reset-run';
import { fmt, loadAverage, mb, s1, spawnBenchWorker, spawnTsx, type Child } from './support';
import { freePort } from '../stack/ports';
import { opts } from './options';

export interface Bench {
  stack: Stack;
  db: Db;
  client: Client;
  connection: Connection;
  bundle: string;
  dataDir: string;
  logFile: string;
  profileDir: string;
  /** The status-callback receiver (`npm run callbacks`) as its own process; absent with --no-receipts. */
  receiver?: Child;
  receiverUrl?: string;
}

export const log = (msg: string) => process.stderr.write(`${msg}\n`);

export async function setUp(): Promise<Bench> {
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
  const logFile = path.join(dataDir, 'logs', 'children.log');
  // The receiver runs as its own process, as in production, so its CPU is measured apart from the
  // local Twilio's (which signs and posts the callbacks: Twilio's work, in the bench process).
  let receiver: Child | undefined;
  let receiverUrl: string | undefined;
  if (opts.receipts) {
    const port = await freePort();
    receiverUrl = `http://127.0.0.1:${port}/twilio/status`;
    receiver = spawnTsx('callbacks/main.ts', {
      env: { ...stack.env, PUBLIC_CALLBACK_URL: receiverUrl, CALLBACKS_PORT: String(port), LOG_LEVEL: 'warn' },
      nodeArgs: opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, 'receiver')}`] : [],
      logFile,
      readyText: '"callbacks started"',
    });
    await receiver.ready;
  }
  return {
    stack,
    db,
    client,
    connection,
    bundle,
    dataDir,
    logFile,
    profileDir,
    receiver,
    receiverUrl,
  };
}

export async function tearDown(b: Bench): Promise<void> {
  await b.receiver?.stop();
  await b.connection.close();
  await b.db.end();
  await b.stack.stop();
}

export function childEnv(b: Bench, extra: Record<string, string> = {}): Record<string, string> {
  // The receiver's URL; with --no-receipts none: the messages carry no callback URL, so the local
  // Twilio sends no callbacks.
  const callbacks = { PUBLIC_CALLBACK_URL: b.receiverUrl ?? '' };
  return { ...b.stack.env, WORKFLOW_BUNDLE_PATH: b.bundle, LOG_LEVEL: 'warn', ...callbacks, ...extra };
}

export function nodeArgs(b: Bench, label: string): string[] {
  const extra = opts.nodeArgs ? opts.nodeArgs.split(/\s+/).filter(Boolean) : [];
  if (opts.heapMb > 0) extra.unshift(`--max-old-space-size=${opts.heapMb}`);
  // One folder per process, Node's own file names (CPU.<date>.<pid>.<thread>...): a fixed
  // --cpu-prof-name would let tsx's loader thread write its profile over the main thread's.
  return opts.cpuProf ? [...extra, '--cpu-prof', `--cpu-prof-dir=${path.join(b.profileDir, label)}`] : extra;
}

export async function startWorkers(b: Bench, n: number, taskQueue: string): Promise<Child[]> {
  const workers = Array.from({ length: n }, (_, i) =>
    spawnBenchWorker({
      env: childEnv(b, { TEMPORAL_TASK_QUEUE: taskQueue }),
      nodeArgs: nodeArgs(b, `worker${i + 1}`),
      logFile: b.logFile,
    }),
  );
  await Promise.all(workers.map((w) => w.ready));
  return workers;
}

/** Messages the local providers accepted so far. */
export function sentSoFar(b: Bench): number {
  return b.stack.twilio!.stats().accepted + b.stack.smtp!.stats().accepted;
}

/** Prints a progress line every 10 s until stopped. */
export function ticker(b: Bench, label: string, rssOf: () => number | undefined): () => void {
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

export function freshProviders(b: Bench): void {
  b.stack.twilio!.reset();
  b.stack.smtp!.reset();
}

export const runIdFor = (label: string) => `bench-${label}-${Date.now().toString(36)}`;

/** Stops a run gracefully: lift the rate so batches in flight finish fast, then the cancel signal. */
export async function stopRun(
  handle: WorkflowHandle<typeof pinResetRun>,
  timeoutMs = 120_000,
): Promise<RunResult | undefined> {
  try {
    // Cancel stops the sends in flight within a second (rate 0 is refused: it is not a way to stop).
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
