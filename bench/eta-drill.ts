// `npm run eta-drill -- --accounts 20000 --rate 100`: how true are the live figures? Runs one run
// on the embedded stack (real Temporal, PostgreSQL, local Twilio/SMTP, a worker process) and reads
// the run's live progress from the ledger every few seconds, as `status` and the Web UI do. At the
// end it compares each ETA with the time the run really took to finish, and the achieved rate with
// the ceiling, and prints the figures (one JSON line last). A drill, not a test: it asserts nothing.
import path from 'node:path';
import { Command } from 'commander';
import { Client, Connection } from '@temporalio/client';
import { startStack, stopOnSignals, PROJECT_ROOT } from '../stack';
import { createPool } from '../db/pool';
import { readLiveProgress } from '../db/sql/read-live-progress';
import { seedAccounts } from '../accounts/seed';
import { buildBundle } from '../workers/build-bundle';
import { achievedRate, etaSeconds } from '../domain/live-progress';
import { startRun } from '../run-api/start-run';
import { spawnWorker } from '../stack/worker-process';
import { parse } from '../cli/options';

const opts = new Command('eta-drill')
  .option('--accounts <n>', 'accounts to seed', parse.count(1), 20_000)
  .option('--rate <n>', 'notification ceiling, messages/s', parse.amount(0.2), 100)
  .option('--every <s>', 'seconds between readings', parse.amount(1), 5)
  .parse()
  .opts<{ accounts: number; rate: number; every: number }>();

interface Sample {
  atMs: number;
  settled: number;
  pending: number;
  rate?: number;
  etaS?: number;
}

async function main(): Promise<void> {
  const dataDir = path.join(PROJECT_ROOT, '.data', 'eta-drill');
  const [stack, bundle] = await Promise.all([
    startStack({ dataDir }),
    buildBundle(path.join(dataDir, 'workflow-bundle.js')),
  ]);
  stopOnSignals(stack);
  const db = createPool(stack.env.DATABASE_URL, 4);
  await seedAccounts(db, { count: opts.accounts, seed: 14, truncate: true });
  const taskQueue = 'pinreset';
  const worker = spawnWorker({
    ...stack.env,
    PINRESET_ENV_FILE: '',
    TEMPORAL_TASK_QUEUE: taskQueue,
    WORKFLOW_BUNDLE_PATH: bundle,
    LOG_LEVEL: 'warn',
  });
  await worker.ready;
  const connection = await Connection.connect({ address: stack.temporal!.address });
  const client = new Client({ connection, namespace: stack.temporal!.namespace });
  const { runId, handle } = await startRun(db, client, {
    reason: 'ETA-DRILL',
    operator: 'drill',
    taskQueue,
    params: {
      ratePerSecond: opts.rate,
      // As the demo: the local Twilio answers receipts in seconds, so the run need not wait the
      // production delivery deadline (15 min) before it ends.
      delivery: { retryAfterSeconds: 5, deadlineSeconds: 30 },
    },
  });
  console.log(`run ${runId}: ${opts.accounts} accounts at ${opts.rate} msg/s; a reading every ${opts.every} s`);

  const samples: Sample[] = [];
  let done = false;
  const result = handle.result().finally(() => {
    done = true;
  });
  while (!done) {
    const live = await readLiveProgress(db, runId);
    const c = live.counts;
    const sample = {
      atMs: live.readAtMs,
      settled: c.planned - c.pending,
      pending: c.pending,
      rate: achievedRate(live),
      etaS: etaSeconds(live, false),
    };
    samples.push(sample);
    console.log(
      `${new Date(sample.atMs).toISOString().slice(11, 19)}  settled ${sample.settled}/${c.planned}  sent/s ${sample.rate?.toFixed(1) ?? '-'}  ETA ${sample.etaS === undefined ? '-' : `${Math.round(sample.etaS)} s`}  in flight ${live.inFlight}`,
    );
    await Promise.race([result, new Promise((r) => setTimeout(r, opts.every * 1000))]);
  }
  const r = await result;
  const end = (
    await db.query<{ t: Date }>('SELECT max(notified_at) AS t FROM ledger WHERE run_id = $1', [runId])
  ).rows[0].t.getTime();
  // ETA error relative to the time that really remained, for readings with at least 30 s left.
  const judged = samples.filter((x) => x.etaS !== undefined && x.pending > 0 && end - x.atMs >= 30_000);
  const errors = judged.map((x) => {
    const truth = (end - x.atMs) / 1000;
    return {
      atS: Math.round((x.atMs - samples[0].atMs) / 1000),
      etaS: Math.round(x.etaS!),
      truthS: Math.round(truth),
      error: (x.etaS! - truth) / truth,
    };
  });
  const abs = errors.map((e) => Math.abs(e.error)).sort((a, b) => a - b);
  const rates = samples.filter((x) => x.rate !== undefined).map((x) => x.rate!);
  const summary = {
    runId,
    accounts: opts.accounts,
    ceiling: opts.rate,
    status: r.status,
    sent: r.counts.sentSms + r.counts.sentEmail,
    readings: samples.length,
    judged: errors.length,
    etaErrorMedianPct: abs.length ? +(100 * abs[Math.floor(abs.length / 2)]).toFixed(1) : null,
    etaErrorP90Pct: abs.length ? +(100 * abs[Math.floor(abs.length * 0.9)]).toFixed(1) : null,
    etaErrorMaxPct: abs.length ? +(100 * abs[abs.length - 1]).toFixed(1) : null,
    etaErrorMaxAfterFirstMinutePct: (() => {
      const later = errors.filter((e) => e.atS >= 60).map((e) => Math.abs(e.error));
      return later.length ? +(100 * Math.max(...later)).toFixed(1) : null;
    })(),
    sentPerSecondMedian: rates.length ? +rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)].toFixed(1) : null,
  };
  for (const e of errors)
    console.log(`  t=${e.atS}s ETA ${e.etaS}s, really ${e.truthS}s left: ${(100 * e.error).toFixed(1)}%`);
  console.log(JSON.stringify(summary));
  await worker.kill('SIGTERM');
  await connection.close();
  await db.end();
  await stack.stop();
}

main().catch((err) => {
  console.error(`eta-drill failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
