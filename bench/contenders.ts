// The two contenders of the compare mode: the naive baseline process and the pipeline (workers and a
// run), with what is measured of each.
import { type WorkflowHandle } from '@temporalio/client';
import { type Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { type Rate } from '../domain/run';
import { type RunResult } from '../workflows/api';
import type { pinResetRun } from '../workflows/pin-reset-run';
import type { BaselineResult } from './naive-baseline';
import {
  cpuDelta,
  cpuSnapshot,
  threadCpuSampler,
  threadCpuSeconds,
  historyStats,
  mb,
  peakRssBytes as peakOf,
  s1,
  spawnTsx,
  type Child,
  type CpuSnapshot,
  type HistoryStats,
} from './support';
import { opts } from './options';
import { startCallbackSink } from './callback-sink';
import { childEnv, freshProviders, nodeArgs, runIdFor, sentSoFar, startWorkers, ticker, type Bench } from './harness';

export interface ContenderResult {
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
  /** Status callbacks the local Twilio posted while the contender ran (to the receiver, or the baseline's sink). */
  statusCallbacks: number;
}

export async function runBaseline(b: Bench): Promise<ContenderResult> {
  freshProviders(b);
  const runId = runIdFor('base');
  const sink = opts.receipts && opts.baselineCallbacks ? await startCallbackSink() : undefined;
  const cpu0 = cpuSnapshot(b.dataDir, b.receiver?.pid);
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
    env: childEnv(b, sink ? { TWILIO_STATUS_CALLBACK_URL: sink.url } : {}),
    nodeArgs: nodeArgs(b, 'baseline'),
    logFile: b.logFile,
  });
  // The child reports its own peak (process.resourceUsage().maxRSS); this is only for the progress lines.
  const stopTicker = ticker(b, 'baseline', () => peakOf(child.pid));
  const threads = threadCpuSampler(child.pid);
  const { code } = await child.exited;
  threads.stop();
  stopTicker();
  const cpu1 = cpuSnapshot(b.dataDir, b.receiver?.pid);
  // The callbacks still on their way are the provider's business after the baseline's last send.
  await sink?.close();
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
    statusCallbacks: b.stack.twilio!.callbacks.stats().attempts,
  };
}

export interface PipelineRun {
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

export async function startPipeline(
  b: Bench,
  params: { ratePerSecond: Rate },
  workers = opts.workers,
): Promise<PipelineRun> {
  freshProviders(b);
  const taskQueue = `bench-${Date.now().toString(36)}`;
  const procs = await startWorkers(b, workers, taskQueue);
  const rssAtReady = Math.max(...procs.map((w) => peakOf(w.pid) ?? 0));
  const cpu0 = cpuSnapshot(b.dataDir, b.receiver?.pid);
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

export async function finishPipeline(
  b: Bench,
  p: PipelineRun,
  result: RunResult | undefined,
  wallMs: number,
): Promise<ContenderResult> {
  const cpu1 = cpuSnapshot(b.dataDir, b.receiver?.pid);
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
    statusCallbacks: b.stack.twilio!.callbacks.stats().attempts,
  };
}

export async function runPipelineToEnd(b: Bench): Promise<ContenderResult> {
  const p = await startPipeline(b, { ratePerSecond: 'unlimited' });
  const stopTicker = ticker(b, 'pipeline', () => Math.max(...p.workers.map((w) => peakOf(w.pid) ?? 0)));
  const result = await p.handle.result();
  const wallMs = Date.now() - p.started;
  stopTicker();
  return finishPipeline(b, p, result, wallMs);
}

export function describe(r: ContenderResult): Record<string, unknown> {
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
    statusCallbacks: r.statusCallbacks,
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
      callbackReceiver: +r.otherCpu.receiver.toFixed(1),
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
export async function ledgerUpdates(db: Db): Promise<{ upd: number; hot: number }> {
  // Backends report their counters at most once a second: let the last ones land.
  await new Promise((r) => setTimeout(r, 1500));
  const { rows } = await db.query<{ upd: string; hot: string }>(
    "SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'ledger'",
  );
  return { upd: Number(rows[0]?.upd ?? 0), hot: Number(rows[0]?.hot ?? 0) };
}
export const hotShare = (a: { upd: number; hot: number }, b: { upd: number; hot: number }) => ({
  ledgerUpdates: b.upd - a.upd,
  hotUpdates: b.hot - a.hot,
  hotShare: +((b.hot - a.hot) / Math.max(1, b.upd - a.upd)).toFixed(3),
});
