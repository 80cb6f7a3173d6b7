// One chaos run, shared by `npm run chaos` (chaos/main.ts) and tests/chaos.test.ts: its own
// local stack (Temporal dev server, PostgreSQL, local Twilio and SMTP with faults on), seeded
// accounts, worker processes, a run of the real workflow, and on a seeded schedule: SIGKILLed
// workers, a PostgreSQL restart and a Temporal restart. Then the verdict (chaos-verify.ts).
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { startStack, PROJECT_ROOT, type Stack } from '../stack';
import type { TwilioFaults, FakeTwilioStats } from '../stack/fake-twilio';
import type { SmtpFaults, FakeSmtpStats } from '../stack/fake-smtp';
import { createPool, type Db } from '../db/pool';
import { seedAccounts, type SeedResult } from '../accounts/seed';
import { buildBundle } from '../workers/build-bundle';
import { activeAccountIds, ledgerTrace, runProgress, snapshotVersions, type LedgerTrace } from '../db/sql/chaos-checks';
import type { RunResult } from '../workflows/api';
import { startRun } from '../run-api/start-run';
import { describeEvent, planChaos, type ChaosEvent } from './schedule';
import { verifyRun, type ChaosVerdict } from './verify';
import { WorkerFleet, type WorkerExit } from './workers';
import { startTcpProxy, type TcpProxy } from '../stack/tcp-proxy';
import type { Rate } from '../domain/run';
import { auditReceipts, type ReceiptAudit } from '../stack/delivery-audit';

export interface ChaosOptions {
  accounts: number;
  workers: number;
  kills: number;
  postgresRestarts: number;
  temporalRestarts: number;
  /** SIGSTOPs of a worker for `freezeMs` (longer than the 15 s heartbeat timeout), then SIGCONT. */
  freezes?: number;
  freezeMs?: number;
  /** Cuts of one worker's Temporal connection (it still reaches PostgreSQL and the providers) for `partitionMs`. */
  partitions?: number;
  partitionMs?: number;
  /**
   * Claim timing of the run (see domain/run.ts): hold must exceed the list lag the local Twilio
   * server is given, grace the worker's Twilio timeout (10 s) plus that lag.
   */
  claim?: { leaseMs: number; holdMs: number; graceMs: number };
  seed: number;
  /** Notification ceiling, messages/s for all workers together, or 'unlimited'. */
  rate: Rate;
  /** Ceiling on PIN resets/s (params.resetMaxPerSecond); 0 = database speed. */
  resetRate?: number;
  batchSize: number;
  batchConcurrency: number;
  twilioFaults: Partial<TwilioFaults>;
  smtpFaults: Partial<SmtpFaults>;
  /** Where the stack keeps its data; removed afterwards unless keepData. */
  dataDir?: string;
  keepData?: boolean;
  /** Prebuilt workflow bundle; built when absent. */
  workflowBundlePath?: string;
  timeoutMs: number;
  /** Progress window the disruptions are spread over. */
  window?: [number, number];
  log?: (line: string) => void;
  /** Extra worker environment (e.g. SEND_CONCURRENCY). */
  workerEnv?: Record<string, string>;
}

export interface ExecutedEvent extends ChaosEvent {
  /** Progress when it actually fired, and its time since the run started. */
  firedAt: number;
  firedAtMs: number;
  durationMs: number;
  pid?: number;
  error?: string;
  /** restart-temporal: worker processes alive right after the restart. */
  alivePids?: number[];
  /** restart-temporal: of those, the ones that completed workflow or activity tasks afterwards (reconnected). */
  workedAfterPids?: number[];
}

export interface ChaosReport {
  pass: boolean;
  problems: string[];
  runId: string;
  result?: RunResult;
  verdict?: ChaosVerdict;
  /** Delivery receipts against the local Twilio server's records (issue 11). */
  receipts?: ReceiptAudit & { abandonedCallbacks: number };
  seed: SeedResult;
  options: Omit<ChaosOptions, 'log'>;
  planned: ChaosEvent[];
  executed: ExecutedEvent[];
  skipped: ChaosEvent[];
  unexpectedWorkerExits: Array<Omit<WorkerExit, 'tail'> & { tail: string }>;
  workerStarts: number;
  faults: { twilio: FakeTwilioStats; smtp: FakeSmtpStats };
  /**
   * Accounts mailed more than once or mailed without a ledger record of it, and accounts with a
   * duplicate SMS: their ledger rows and delivery times (ms since the run started), ids only.
   */
  duplicates: DuplicateTrace[];
  timings: { stackStartMs: number; seedMs: number; runMs: number; verifyMs: number; totalMs: number };
}

export interface DuplicateTrace extends Partial<LedgerTrace> {
  accountId: number;
  channel: string | null;
  /** Email: deliveries the SMTP server recorded for the account's Message-ID. */
  deliveredMs?: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const dataDir = path.resolve(o.dataDir ?? path.join(PROJECT_ROOT, '.data', `chaos-${process.pid}`));
  await mkdir(dataDir, { recursive: true });
  const plan = planChaos({
    seed: o.seed,
    workers: o.workers,
    kills: o.kills,
    postgresRestarts: o.postgresRestarts,
    temporalRestarts: o.temporalRestarts,
    freezes: o.freezes,
    partitions: o.partitions,
    window: o.window,
  });
  for (const e of plan) log(`plan: ${describeEvent(e)}`);

  log('starting the local stack (Temporal, PostgreSQL, local Twilio and SMTP with faults)...');
  const [stack, bundle] = await Promise.all([
    startStack({ dataDir, twilioFaults: o.twilioFaults, smtpFaults: o.smtpFaults }),
    o.workflowBundlePath
      ? Promise.resolve(o.workflowBundlePath)
      : buildBundle(path.join(dataDir, 'workflow-bundle.js')),
  ]);
  const stackStartMs = Date.now() - t0;
  let db: Db | undefined;
  let connection: Connection | undefined;
  let fleet: WorkerFleet | undefined;
  const proxies: TcpProxy[] = [];
  const problems: string[] = [];
  try {
    if (!stack.postgres?.embedded || !stack.temporal?.started) {
      throw new Error('a chaos run restarts its servers: unset DATABASE_URL and TEMPORAL_ADDRESS so it starts its own');
    }
    db = createPool(stack.env.DATABASE_URL, 4);
    const seedStart = Date.now();
    const seed = await seedAccounts(db, { count: o.accounts, seed: o.seed });
    const before = await snapshotVersions(db);
    const activeIds = await activeAccountIds(db);
    const seedMs = Date.now() - seedStart;
    log(`seeded ${seed.count} accounts (${activeIds.length} active) in ${(seedMs / 1000).toFixed(1)} s`);

    const taskQueue = `chaos-${process.pid}`;
    // Each worker slot reaches Temporal through its own proxy, so one can be cut off alone.
    if (o.partitions) {
      const [host, port] = stack.temporal.address.split(':');
      for (let i = 0; i < o.workers; i++) proxies.push(await startTcpProxy({ host, port: Number(port) }));
    }
    fleet = new WorkerFleet(
      { ...stack.env, TEMPORAL_TASK_QUEUE: taskQueue, WORKFLOW_BUNDLE_PATH: bundle, ...o.workerEnv },
      {
        logFile: path.join(dataDir, 'workers.log'),
        onUnexpectedExit: (e) =>
          log(`worker ${e.slot} (pid ${e.pid}) died unordered: code ${e.code}, signal ${e.signal}; restarting it`),
        envFor: (slot): Record<string, string> => (proxies[slot] ? { TEMPORAL_ADDRESS: proxies[slot].address } : {}),
      },
    );
    await Promise.all(Array.from({ length: o.workers }, (_, i) => fleet!.start(i)));
    log(`${o.workers} worker processes polling`);

    connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection, namespace: stack.temporal.namespace });
    const runStart = Date.now();
    const { runId, handle } = await startRun(db, client, {
      reason: 'CHAOS-DRILL',
      operator: 'chaos',
      taskQueue,
      // Receipts come within seconds from the local server: short retry delay and deadline.
      params: {
        ratePerSecond: o.rate,
        resetMaxPerSecond: o.resetRate ?? 0,
        batchSize: o.batchSize,
        batchConcurrency: o.batchConcurrency,
        delivery: { retryAfterSeconds: 5, deadlineSeconds: 30 },
        ...o.claim,
      },
    });
    log(`run ${runId} started`);

    let done = false;
    const resultP = awaitResult(client, handle.workflowId, () => done, log).finally(() => {
      done = true;
    });
    resultP.catch(() => undefined);

    // Progress from PostgreSQL; it fails while PostgreSQL restarts: keep the last value.
    let progress = 0;
    let lastLog = 0;
    const poll = async () => {
      try {
        const p = await runProgress(db!, runId);
        progress = p.progress;
        if (Date.now() - lastLog > 5_000) {
          lastLog = Date.now();
          log(
            `progress ${(progress * 100).toFixed(1)}%: reset ${p.reset}/${p.planned}, settled ${p.settled}, workers alive ${fleet!.alive().length}`,
          );
        }
      } catch {
        // PostgreSQL is restarting.
      }
    };

    const executed: ExecutedEvent[] = [];
    const skipped: ChaosEvent[] = [];
    const deadline = runStart + o.timeoutMs;
    for (const ev of plan) {
      while (!done && progress < ev.at && Date.now() < deadline) {
        await poll();
        await sleep(150);
      }
      if (done || Date.now() >= deadline) {
        skipped.push(ev);
        continue;
      }
      const firedAt = progress;
      const started = Date.now();
      const rec: ExecutedEvent = { ...ev, firedAt, firedAtMs: started - runStart, durationMs: 0 };
      try {
        if (ev.kind === 'kill-worker') {
          const killed = await fleet.kill(ev.worker!);
          rec.pid = killed?.pid;
          await sleep(ev.restartDelayMs ?? 0);
          void fleet.start(ev.worker!).catch(() => undefined);
        } else if (ev.kind === 'freeze-worker') {
          // In the background: the schedule goes on while the worker sleeps.
          const ms = o.freezeMs ?? 20_000;
          void fleet
            .freeze(ev.worker!, ms)
            .then((r) => log(`chaos: worker ${ev.worker} (pid ${r?.pid}) woke after ${ms} ms`));
          rec.pid = fleet.alivePids()[ev.worker!];
        } else if (ev.kind === 'partition-worker') {
          const proxy = proxies[ev.worker!];
          const ms = o.partitionMs ?? 20_000;
          proxy.blackhole();
          setTimeout(() => {
            proxy.restore();
            log(`chaos: worker ${ev.worker} reaches Temporal again after ${ms} ms`);
          }, ms);
        } else if (ev.kind === 'restart-postgres') {
          await stack.postgres.restart();
        } else {
          await stack.temporal.restart();
          rec.alivePids = fleet.alivePids();
        }
      } catch (err) {
        rec.error = (err as Error).message;
        problems.push(`${ev.kind} failed: ${rec.error}`);
      }
      rec.durationMs = Date.now() - started;
      executed.push(rec);
      log(
        `chaos: ${describeEvent(ev)} -> fired at ${(firedAt * 100).toFixed(1)}%, took ${rec.durationMs} ms${rec.pid ? ` (pid ${rec.pid})` : ''}${rec.error ? ` ERROR ${rec.error}` : ''}`,
      );
    }

    // Keep reporting progress until the end.
    const ticker = setInterval(() => void poll(), 1_000);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the run did not finish within ${Math.round(o.timeoutMs / 1000)} s`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    const result = await Promise.race([resultP, timedOut])
      .catch((err: Error) => {
        problems.push(err.message);
        return undefined;
      })
      .finally(() => {
        clearTimeout(timer);
        clearInterval(ticker);
      });
    done = true;
    const runMs = Date.now() - runStart;
    log(`run finished in ${(runMs / 1000).toFixed(1)} s: ${result ? result.status : 'no result'}`);

    // Stop the workers before reading the providers' records: nothing may still be sending.
    await fleet.stopAll();
    // Did the workers that lived through a Temporal restart reconnect? Their identities on the
    // tasks they completed afterwards say so (the history is the server's own record).
    const restarts = executed.filter((e) => e.kind === 'restart-temporal' && !e.error);
    if (restarts.length) {
      try {
        const work = await tasksByWorker(client, handle.workflowId);
        for (const e of restarts) {
          const after = runStart + e.firedAtMs + e.durationMs;
          e.workedAfterPids = (e.alivePids ?? []).filter((pid) => (work.get(pid) ?? []).some((t) => t > after));
          log(
            `temporal restart at ${(e.firedAt * 100).toFixed(1)}%: workers alive ${JSON.stringify(e.alivePids)}, completed tasks afterwards ${JSON.stringify(e.workedAfterPids)}`,
          );
        }
      } catch (err) {
        log(`could not read the histories to check reconnection: ${(err as Error).message}`);
      }
    }
    const verifyStart = Date.now();
    // SMS a delivery follow-up acted on (a retry after 30003, email or unreachable after
    // 30005/30006/30007) are accounted for by the ledger's delivery_action: each account's
    // message is the one in provider_message_id; its earlier SMS (identified by the reference in
    // their callbacks) were sent once each and reported undelivered.
    const acted = (
      await db.query<{ ref: string; provider_message_id: string | null }>(
        `SELECT ref, CASE WHEN notify_state = 'sent' AND channel = 'sms' THEN provider_message_id END AS provider_message_id
       FROM ledger WHERE run_id = $1 AND delivery_action IS NOT NULL AND ref IS NOT NULL`,
        [runId],
      )
    ).rows;
    const current = new Map(acted.map((r) => [r.ref, r.provider_message_id]));
    const superseded = new Set<string>();
    for (const r of (
      await db.query<{ ref: string; sid: string }>(
        'SELECT ref, message_sid AS sid FROM sms_receipts WHERE run_id = $1 AND ref = ANY($2)',
        [runId, [...current.keys()]],
      )
    ).rows) {
      if (r.sid !== current.get(r.ref)) superseded.add(r.sid);
    }
    const emailCrashResends = await countEmailCrashResends(db, runId, new Date(runStart), stack, executed);
    const verdict = await verifyRun({
      db,
      runId,
      before,
      activeIds,
      emailCrashResends,
      sms: stack.twilio!.messages().filter((m) => !superseded.has(m.sid)),
      emails: stack.smtp!.messages(),
      providerReports: {
        smsDuplicates: stack.twilio!.duplicates().length,
        emailDuplicates: stack.smtp!.duplicates().length,
        emailRawDuplicates: stack.smtp!.rawDuplicates().length,
      },
    });
    const verifyMs = Date.now() - verifyStart;
    problems.push(...verdict.problems);
    const duplicates = await traceDuplicates(db, runId, new Date(runStart), stack, verdict);
    for (const d of duplicates) log(`duplicate: ${JSON.stringify(d)}`);
    // Every final receipt recorded must be the server's; a receipt may be missing only where the
    // server gave up its callback retries (a PostgreSQL restart longer than Twilio's retry window).
    await stack.twilio!.callbacks.idle(30_000).catch(() => undefined); // the last retries of callbacks
    const receipts = {
      ...(await auditReceipts(db, runId, stack.twilio!)),
      abandonedCallbacks: stack.twilio!.callbacks.stats().abandoned,
    };
    if (receipts.mismatched > 0)
      problems.push(`${receipts.mismatched} delivery receipts differ from the local Twilio server's records`);
    if (receipts.missing > receipts.abandonedCallbacks)
      problems.push(
        `${receipts.missing} final receipts missing, more than the ${receipts.abandonedCallbacks} callbacks the server gave up on`,
      );
    // The sender's queue (on by default in the stack) overflows only when the budget exceeds its throughput.
    const overflow = stack.twilio!.stats().queueOverflow;
    if (overflow > 0)
      problems.push(
        `${overflow} messages failed with 30001 (the sender's queue overflowed): the sender budget let the run send above the sender's throughput`,
      );
    if (receipts.fellBack + receipts.unreachable !== receipts.fallbackDue)
      problems.push(
        `${receipts.fallbackDue - receipts.fellBack - receipts.unreachable} accounts undelivered with 30005/30006 got no email fallback`,
      );
    if (skipped.length) problems.push(`${skipped.length} planned disruptions did not happen before the run ended`);
    const kills = executed.filter((e) => e.kind === 'kill-worker' && e.pid).length;
    if (kills < o.kills) problems.push(`only ${kills} of ${o.kills} worker kills happened`);
    if (result && result.status !== 'completed') problems.push(`the run ended ${result.status}`);

    const { log: _ignored, ...options } = o;
    return {
      pass: problems.length === 0,
      problems,
      runId,
      result,
      verdict,
      receipts,
      seed,
      options,
      planned: plan,
      executed,
      skipped,
      unexpectedWorkerExits: fleet.unexpectedExits(),
      workerStarts: fleet.started.length,
      faults: { twilio: stack.twilio!.stats(), smtp: stack.smtp!.stats() },
      duplicates,
      timings: { stackStartMs, seedMs, runMs, verifyMs, totalMs: Date.now() - t0 },
    };
  } finally {
    for (const p of proxies) p.restore();
    await fleet?.stopAll().catch(() => undefined);
    await Promise.allSettled(proxies.map((p) => p.stop()));
    await connection?.close().catch(() => undefined);
    await db?.end().catch(() => undefined);
    await stopStack(stack);
    if (!o.keepData) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The one-line verdict: `CHAOS PASS ...` or `CHAOS FAIL ...` with the figures. */
export function verdictLine(r: ChaosReport): string {
  const f = r.verdict?.figures;
  const kills = r.executed.filter((e) => e.kind === 'kill-worker' && e.pid).length;
  const pg = r.executed.filter((e) => e.kind === 'restart-postgres' && !e.error).length;
  const tp = r.executed.filter((e) => e.kind === 'restart-temporal' && !e.error).length;
  const parts = [
    `CHAOS ${r.pass ? 'PASS' : 'FAIL'}`,
    `accounts=${r.seed.count}`,
    `cohort=${f?.cohort ?? '?'}`,
    `reset_once=${f?.reset.resetOnce ?? '?'}/${f?.reset.resetRows ?? '?'}`,
    `reset_twice=${f?.reset.resetTwice ?? '?'}`,
    `sms=${f?.notify.sentSms ?? '?'}`,
    `email=${f?.notify.sentEmail ?? '?'}`,
    `unreachable=${f?.notify.unreachable ?? '?'}`,
    `failed=${f?.notify.failed ?? '?'}`,
    `pending=${f?.notify.pending ?? '?'}`,
    `dup_sms=${f?.sms.duplicates ?? '?'}`,
    `receipts=${r.receipts ? `${JSON.stringify(r.receipts.recorded).replace(/[{}"]/g, '')}` : '?'}`,
    `receipts_match=${r.receipts ? r.receipts.mismatched === 0 && r.receipts.missing <= r.receipts.abandonedCallbacks : '?'}`,
    `fallback_after_receipt=${r.receipts ? `${r.receipts.fellBack}+${r.receipts.unreachable}unreachable/${r.receipts.fallbackDue}` : '?'}`,
    `dup_email=${f ? f.email.duplicates - f.email.crashResends : '?'}`,
    `email_crash_resends=${f?.email.crashResends ?? '?'}`,
    `ambiguous=${
      f
        ? Object.entries(f.ambiguous)
            .map(([k, n]) => `${k}:${n}`)
            .join(',') || '0'
        : '?'
    }`,
    `kills=${kills}`,
    `freezes=${r.executed.filter((e) => e.kind === 'freeze-worker' && !e.error).length}`,
    `partitions=${r.executed.filter((e) => e.kind === 'partition-worker' && !e.error).length}`,
    `pg_restarts=${pg}`,
    `temporal_restarts=${tp}`,
    `unordered_worker_deaths=${r.unexpectedWorkerExits.length}`,
    `reconnected_after_temporal_restart=${
      r.executed
        .filter((e) => e.kind === 'restart-temporal')
        .map((e) => `${e.workedAfterPids?.length ?? '?'}/${e.alivePids?.length ?? '?'}`)
        .join(',') || '-'
    }`,
    `429s=${r.faults.twilio.rejected429}`,
    `5xx=${r.faults.twilio.rejected5xx}`,
    `drops=${r.faults.twilio.dropped}`,
    `slow_accepts=${r.faults.twilio.slowAccepted}`,
    `lookups=${r.faults.twilio.listed + r.faults.twilio.fetched}`,
    `smtp_4xx=${r.faults.smtp.rejected4xx}`,
    `exposure_window=${r.result?.exposureWindowMs !== undefined ? `${(r.result.exposureWindowMs / 1000).toFixed(1)}s` : '?'}`,
    `run=${(r.timings.runMs / 1000).toFixed(1)}s`,
    `total=${(r.timings.totalMs / 1000).toFixed(1)}s`,
  ];
  return parts.join(' ');
}

/** Completion times of workflow and activity tasks per worker pid (from the identity), over every run of the chain. */
async function tasksByWorker(client: Client, workflowId: string): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>();
  for await (const info of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await client.workflow.getHandle(workflowId, info.runId).fetchHistory();
    for (const e of history.events ?? []) {
      const identity =
        e.workflowTaskCompletedEventAttributes?.identity ??
        e.activityTaskCompletedEventAttributes?.identity ??
        e.activityTaskFailedEventAttributes?.identity;
      const pid = identity ? Number(/:(\d+)$/.exec(identity)?.[1]) : NaN;
      if (!Number.isInteger(pid) || !e.eventTime) continue;
      const ms = Number(e.eventTime.seconds ?? 0) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6);
      const list = out.get(pid);
      if (list) list.push(ms);
      else out.set(pid, [ms]);
    }
  }
  return out;
}

/** Delivery times (ms since `since`) of each account's emails, by the account id in the Message-ID (templates.ts). */
function emailDeliveriesByAccount(runId: string, since: Date, stack: Stack): Map<number, number[]> {
  const deliveries = new Map<number, number[]>();
  const prefix = `pinreset.${runId}.`;
  for (const m of stack.smtp!.messages()) {
    if (!m.messageId.startsWith(prefix)) continue;
    const id = Number(m.messageId.slice(prefix.length, m.messageId.indexOf('@')));
    deliveries.set(id, [...(deliveries.get(id) ?? []), m.receivedAt.getTime() - since.getTime()]);
  }
  return deliveries;
}

/**
 * What a duplicate looks like in the ledger: every account whose Message-ID the SMTP server
 * recorded more than once, or recorded without the ledger holding it as that account's email,
 * and the accounts of duplicate SMS. The account id is read from the Message-ID (templates.ts).
 */
async function traceDuplicates(
  db: Db,
  runId: string,
  since: Date,
  stack: Stack,
  verdict: ChaosVerdict,
): Promise<DuplicateTrace[]> {
  const deliveries = emailDeliveriesByAccount(runId, since, stack);
  const rows = new Map((await ledgerTrace(db, runId, [...deliveries.keys()], since)).map((r) => [r.accountId, r]));
  const out: DuplicateTrace[] = [];
  for (const [accountId, deliveredMs] of deliveries) {
    const row = rows.get(accountId);
    const recorded = row?.notifyState === 'sent' && row.channel === 'email';
    if (deliveredMs.length > 1 || !recorded)
      out.push({ ...row, accountId, channel: row?.channel ?? null, deliveredMs });
  }
  const sms = await ledgerTrace(db, runId, verdict.figures.sms.duplicateAccountIds, since);
  return [...out, ...sms];
}

/**
 * Emails mailed twice because their holder was SIGKILLed after the relay accepted them and before
 * the ledger recorded it: exactly two deliveries of the account's Message-ID, a kill of a worker
 * within 2 s after the first, and the row resent after the takeover (resolved_by 'resend'). The
 * crash window is documented (docs/operators.md, "Exactly once"); anything else is a duplicate.
 */
async function countEmailCrashResends(
  db: Db,
  runId: string,
  since: Date,
  stack: Stack,
  executed: ExecutedEvent[],
): Promise<number> {
  const kills = executed.filter((e) => e.kind === 'kill-worker' && e.pid).map((e) => e.firedAtMs);
  const twice = [...emailDeliveriesByAccount(runId, since, stack)].filter(([, ms]) => ms.length === 2);
  const rows = new Map(
    (
      await ledgerTrace(
        db,
        runId,
        twice.map(([id]) => id),
        since,
      )
    ).map((r) => [r.accountId, r]),
  );
  return twice.filter(([id, [first]]) => {
    const row = rows.get(id);
    return row?.resolvedBy === 'resend' && kills.some((k) => k >= first - 50 && k <= first + 2_000);
  }).length;
}

async function stopStack(stack: Stack): Promise<void> {
  await stack.stop().catch(() => undefined);
}

/**
 * The run's result, across Temporal server restarts: a long poll cut by the restart is retried
 * (the workflow itself lives on in the server's database).
 */
async function awaitResult(
  client: Client,
  workflowId: string,
  stop: () => boolean,
  log: (l: string) => void,
): Promise<RunResult> {
  let failures = 0;
  for (;;) {
    try {
      return (await client.workflow.getHandle(workflowId).result()) as RunResult;
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw err;
      if (stop()) throw err;
      if (++failures % 10 === 1) log(`waiting for the result: ${(err as Error).message.split('\n')[0]} (retrying)`);
      await sleep(1_000);
    }
  }
}
