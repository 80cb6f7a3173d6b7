// Helpers for bench/main.ts: child processes (worker, baseline), peak RSS and CPU from /proc,
// Temporal history statistics, and the local stack's data reset between contenders.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Db } from '../db/pool';
import { seedAccounts } from '../accounts/seed';
import { spawnWorker } from '../stack/worker-process';
import { PROJECT_ROOT } from '../stack';

// ---- /proc -------------------------------------------------------------------------------------

const CLK_TCK = 100;

/** Peak resident set size (VmHWM) of a live process, in bytes; undefined once it is gone. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, seconds. */
  cpuS: number;
  /** cutime + cstime (reaped children), seconds. */
  childCpuS: number;
}

function readStat(pid: number, file = `/proc/${pid}/stat`): ProcStat | undefined {
  try {
    const raw = readFileSync(file, 'utf8');
    const close = raw.lastIndexOf(')');
    const comm = raw.slice(raw.indexOf('(') + 1, close);
    const f = raw.slice(close + 2).split(' ');
    // f[0] = state (field 3); utime is field 14 -> f[11]
    return {
      pid,
      ppid: Number(f[1]),
      comm,
      cpuS: (Number(f[11]) + Number(f[12])) / CLK_TCK,
      childCpuS: (Number(f[13]) + Number(f[14])) / CLK_TCK,
    };
  } catch {
    return undefined;
  }
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** CPU seconds of a process tree (live descendants plus reaped children). */
export function treeCpuSeconds(root: number, stats = allStats()): number {
  const byParent = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const list = byParent.get(s.ppid);
    if (list) list.push(s);
    else byParent.set(s.ppid, [s]);
  }
  const self = stats.find((s) => s.pid === root);
  if (!self) return 0;
  let total = self.cpuS + self.childCpuS;
  const stack = [...(byParent.get(root) ?? [])];
  while (stack.length) {
    const s = stack.pop()!;
    total += s.cpuS;
    stack.push(...(byParent.get(s.pid) ?? []));
  }
  return total;
}

export interface CpuSnapshot {
  bench: number;
  postgres: number;
  temporal: number;
  /** The status-callback receiver, a process of its own as in production. */
  receiver: number;
}

/** CPU seconds used so far by this process (fake providers, client), PostgreSQL and the Temporal dev server. */
export function cpuSnapshot(dataDir: string, receiverPid?: number): CpuSnapshot {
  const stats = allStats();
  const u = process.cpuUsage();
  let pgPid: number | undefined;
  try {
    pgPid = Number(readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    pgPid = undefined;
  }
  const temporal = stats.filter((s) => s.ppid === process.pid && s.comm.startsWith('temporal'));
  return {
    bench: (u.user + u.system) / 1e6,
    postgres: pgPid ? treeCpuSeconds(pgPid, stats) : 0,
    temporal: temporal.reduce((n, s) => n + treeCpuSeconds(s.pid, stats), 0),
    receiver: receiverPid ? (processCpuSeconds(receiverPid) ?? 0) : 0,
  };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  return {
    bench: b.bench - a.bench,
    postgres: b.postgres - a.postgres,
    temporal: b.temporal - a.temporal,
    receiver: b.receiver - a.receiver,
  };
}

export function processCpuSeconds(pid: number): number | undefined {
  return readStat(pid)?.cpuS;
}

export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

// ---- child processes ---------------------------------------------------------------------------

export interface Child {
  child: ChildProcess;
  pid: number;
  /** Resolves when the output contains `readyText` (or at once when none is given). */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the child wrote on stdout. */
  stdout(): string;
  /** Last output, for error messages. */
  tail(): string;
  /** Reads VmHWM and CPU, then SIGTERM (SIGKILL after `graceMs`); returns what was read. */
  stop(graceMs?: number): Promise<{ peakRssBytes?: number; cpuS?: number }>;
}

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
});

/** Starts `node [nodeArgs] --import tsx <script> [args]`, logging its output to `logFile`. */
export function spawnTsx(
  script: string,
  opts: {
    args?: string[];
    env: Record<string, string>;
    nodeArgs?: string[];
    logFile: string;
    readyText?: string;
  },
): Child {
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), '--import', 'tsx', path.join(PROJECT_ROOT, script), ...(opts.args ?? [])],
    {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return watchChild(child, script, opts);
}

/** Worker processes, started the one way (stack/worker-process.ts), watched like the baseline. */
export function spawnBenchWorker(opts: { env: Record<string, string>; nodeArgs?: string[]; logFile: string }): Child {
  const worker = spawnWorker(opts.env, { nodeArgs: opts.nodeArgs });
  worker.ready.catch(() => undefined); // watchChild reports an early exit with the output
  const watched = watchChild(worker.child, 'workers/main.ts', { logFile: opts.logFile, readyText: '"worker started"' });
  return watched;
}

/** Logs, tail, readiness, and a stop that reads the process's peak RSS and CPU first. */
function watchChild(child: ChildProcess, script: string, opts: { logFile: string; readyText?: string }): Child {
  liveChildren.add(child);
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });
  let out = '';
  let tail = '';
  let markReady!: () => void;
  let failReady!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  if (!opts.readyText) markReady();
  const seen = (b: Buffer, isStdout: boolean) => {
    const text = b.toString();
    log.write(b);
    tail = (tail + text).slice(-4000);
    if (isStdout) out += text;
    if (opts.readyText && tail.includes(opts.readyText)) markReady();
  };
  child.stdout!.on('data', (b: Buffer) => seen(b, true));
  child.stderr!.on('data', (b: Buffer) => seen(b, false));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      failReady(new Error(`${script} exited (code ${code}, signal ${signal}):\n${tail}`));
      log.end();
      resolve({ code, signal });
    });
  });
  ready.catch(() => undefined);
  const pid = child.pid!;
  return {
    child,
    pid,
    ready,
    exited,
    stdout: () => out,
    tail: () => tail,
    async stop(graceMs = 30_000) {
      const read = { peakRssBytes: peakRssBytes(pid), cpuS: processCpuSeconds(pid) };
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(timer);
      }
      return read;
    },
  };
}

// ---- Temporal history --------------------------------------------------------------------------

export interface HistoryStats {
  /** Runs in the continue-as-new chain. */
  runs: number;
  continuedAsNew: number;
  /** History events per run of the chain. */
  eventsPerRun: number[];
  events: number;
  workflowTasksCompleted: number;
  activitiesScheduled: number;
  /** WorkflowTaskCompleted + ActivityTaskScheduled over the whole chain. */
  actions: number;
  /** Other events Temporal Cloud also bills as actions (signals, updates, timers, search attribute upserts...). */
  otherBillable: number;
  /** Largest history size of a run, bytes (serialized). */
  maxHistoryBytes: number;
}

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Follows the continue-as-new chain from the first run and counts the events of every run. */
export async function historyStats(client: Client, workflowId: string, firstRunId: string): Promise<HistoryStats> {
  const s: HistoryStats = {
    runs: 0,
    continuedAsNew: 0,
    eventsPerRun: [],
    events: 0,
    workflowTasksCompleted: 0,
    activitiesScheduled: 0,
    actions: 0,
    otherBillable: 0,
    maxHistoryBytes: 0,
  };
  let runId: string | undefined = firstRunId;
  while (runId) {
    const history: History = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    s.runs++;
    s.eventsPerRun.push(events.length);
    s.events += events.length;
    s.maxHistoryBytes = Math.max(s.maxHistoryBytes, JSON.stringify(history).length);
    runId = undefined;
    for (const e of events) {
      if (e.workflowTaskCompletedEventAttributes) s.workflowTasksCompleted++;
      else if (e.activityTaskScheduledEventAttributes) s.activitiesScheduled++;
      else if (
        e.workflowExecutionSignaledEventAttributes ||
        e.workflowExecutionUpdateAcceptedEventAttributes ||
        e.timerStartedEventAttributes ||
        e.upsertWorkflowSearchAttributesEventAttributes ||
        e.workflowExecutionStartedEventAttributes
      )
        s.otherBillable++;
      const can = e.workflowExecutionContinuedAsNewEventAttributes;
      if (can) {
        s.continuedAsNew++;
        s.otherBillable++;
        runId = can.newExecutionRunId ?? undefined;
      }
    }
  }
  s.actions = s.workflowTasksCompleted + s.activitiesScheduled;
  return s;
}

// ---- data --------------------------------------------------------------------------------------

export const BENCH_SEED = 2021;

/**
 * Same data for every contender: empties the pipeline's tables, seeds `count` accounts afresh
 * (deterministic for the seed, so the same accounts every time), and leaves the tables analysed
 * and checkpointed so no contender pays for the previous one's dead rows.
 */
export async function freshData(db: Db, count: number): Promise<{ seedMs: number }> {
  const started = Date.now();
  await db.query('TRUNCATE checkpoints, ledger, runs');
  await seedAccounts(db, { count, seed: BENCH_SEED, truncate: true });
  await db.query('VACUUM ANALYZE accounts');
  await db.query('VACUUM ANALYZE ledger');
  await db.query('CHECKPOINT');
  return { seedMs: Date.now() - started };
}

export async function relationSizes(
  db: Db,
): Promise<{ ledger: number; checkpoints: number; accounts: number; runs: number }> {
  const { rows } = await db.query<{ ledger: string; checkpoints: string; accounts: string; runs: string }>(
    `SELECT pg_total_relation_size('ledger') AS ledger, pg_total_relation_size('checkpoints') AS checkpoints,
            pg_total_relation_size('accounts') AS accounts, pg_total_relation_size('runs') AS runs`,
  );
  const r = rows[0];
  return {
    ledger: Number(r.ledger),
    checkpoints: Number(r.checkpoints),
    accounts: Number(r.accounts),
    runs: Number(r.runs),
  };
}

// ---- formatting --------------------------------------------------------------------------------

export const mb = (bytes: number | undefined) => (bytes === undefined ? null : +(bytes / 1024 / 1024).toFixed(1));
export const s1 = (ms: number) => +(ms / 1000).toFixed(1);
export const fmt = (n: number) => n.toLocaleString('en-US');

// ---- pg_stat_statements (bench --pg-stats) -------------------------------------------------------

export async function pgStatsReset(db: Db): Promise<void> {
  await db.query('SELECT pg_stat_statements_reset()');
  await db.query('SELECT pg_stat_reset()');
}

export interface StatementStat {
  toplevel: boolean;
  calls: number;
  totalMs: number;
  meanMs: number;
  rows: number;
  sharedBlksDirtied: number;
  walMB: number;
  query: string;
}

/** The statements that took the most time since the last reset (nested ones inside functions too). */
export async function pgStatsTop(db: Db, limit = 12): Promise<StatementStat[]> {
  const { rows } = await db.query(
    `SELECT toplevel, calls::int, round(total_exec_time::numeric, 1)::float AS total_ms, round(mean_exec_time::numeric, 3)::float AS mean_ms,
            rows::bigint::float AS rows, shared_blks_dirtied::float AS dirtied, round(wal_bytes / 1048576.0, 1)::float AS wal_mb,
            left(regexp_replace(query, '\\s+', ' ', 'g'), 140) AS query
     FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND query !~* 'pg_stat_statements|VACUUM|CHECKPOINT|TRUNCATE|INSERT INTO accounts'
     ORDER BY total_exec_time DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    toplevel: r.toplevel,
    calls: r.calls,
    totalMs: r.total_ms,
    meanMs: r.mean_ms,
    rows: r.rows,
    sharedBlksDirtied: r.dirtied,
    walMB: r.wal_mb,
    query: r.query,
  }));
}

export function printPgStats(label: string, stats: StatementStat[]): void {
  console.log(`\n  pg_stat_statements, ${label} (nested = inside a function):`);
  console.log('      total ms   calls    mean ms    WAL MB  statement');
  for (const s of stats) {
    console.log(
      `  ${String(Math.round(s.totalMs)).padStart(12)}${String(s.calls).padStart(8)}${s.meanMs.toFixed(3).padStart(11)}${s.walMB.toFixed(1).padStart(10)}  ${s.toplevel ? '' : '(nested) '}${s.query}`,
    );
  }
}

// ---- per-thread CPU (which thread of a process is the bottleneck) -------------------------------

/** CPU seconds per thread of a live process, grouped by thread name; `main` is the JS main thread. */
export function threadCpuSeconds(pid: number): Record<string, number> | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const tid of tids) {
    const s = readStat(Number(tid), `/proc/${pid}/task/${tid}/stat`);
    if (!s) continue;
    const name = Number(tid) === pid ? 'main' : s.comm.replace(/[-_ ]?\d+$/, '').trim() || 'thread';
    out[name] = +((out[name] ?? 0) + s.cpuS).toFixed(2);
  }
  return out;
}

/** Samples threadCpuSeconds every second while the process lives; `last()` is the final reading. */
export function threadCpuSampler(pid: number): { last(): Record<string, number> | undefined; stop(): void } {
  let last = threadCpuSeconds(pid);
  const timer = setInterval(() => {
    last = threadCpuSeconds(pid) ?? last;
  }, 1000);
  timer.unref();
  return { last: () => threadCpuSeconds(pid) ?? last, stop: () => clearInterval(timer) };
}
