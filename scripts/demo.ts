// `npm run demo`: the main job on the embedded stack. Starts Temporal, PostgreSQL and the local
// Twilio and SMTP servers, seeds accounts, starts a worker process, runs a full-speed reset and
// notification run, shows progress, and prints a summary ending with one line of JSON.
import { spawnWorker } from '../stack/worker-process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { Client, Connection } from '@temporalio/client';
import { startStack, stopOnSignals, PROJECT_ROOT } from '../stack';
import { auditDeliveries, auditReceipts } from '../stack/delivery-audit';
import { deliveryLine } from '../workflows/progress-markdown';
import { createPool } from '../db/pool';
import { seedAccounts } from '../accounts/seed';
import { buildBundle } from '../workers/build-bundle';
import { startRun } from '../run-api/start-run';
import { parse } from '../cli/options';
import type { Rate } from '../domain/run';
import { formatProgressLine } from '../run-api/format-progress';
import { progressQuery, type RunResult } from '../workflows/api';
import { envFileText, exportBlock } from '../config/dotenv';

const program = new Command('demo')
  .description('Run the whole pipeline on the embedded local stack')
  .option('--accounts <n>', 'accounts to seed', parse.count(1), 850_000)
  .option('--rate <n>', "notification rate ceiling, messages/s, or 'unlimited'", parse.rate, 'unlimited' as Rate)
  .option('--batch-size <n>', 'accounts per batch', parse.count(1), 1000)
  .option('--concurrency <n>', 'notify batches in flight', parse.count(1), 8)
  .option(
    '--hold',
    'keep the stack running after the run (Ctrl-C to stop), and print the environment the CLI and a second worker need to use it',
  )
  .parse();
const opts = program.opts<{ accounts: number; rate: Rate; batchSize: number; concurrency: number; hold?: boolean }>();

async function main(): Promise<void> {
  const dataDir = path.join(PROJECT_ROOT, '.data', 'demo');
  console.log('Starting the local stack (Temporal dev server, PostgreSQL, local Twilio and SMTP)...');
  const [stack, bundle] = await Promise.all([
    startStack({ dataDir }),
    buildBundle(path.join(dataDir, 'workflow-bundle.js')),
  ]);
  stopOnSignals(stack);
  console.log(`Temporal Web UI: ${stack.temporal!.uiUrl}`);

  const db = createPool(stack.env.DATABASE_URL, 4);
  const seedStart = Date.now();
  const seeded = await seedAccounts(db, { count: opts.accounts, seed: 2021 });
  console.log(
    `Seeded ${opts.accounts.toLocaleString('en-US')} accounts in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`,
    seeded,
  );

  const taskQueue = 'pinreset';
  const worker = spawnWorker(
    { ...stack.env, TEMPORAL_TASK_QUEUE: taskQueue, WORKFLOW_BUNDLE_PATH: bundle },
    { echo: true },
  );
  void worker.exited.then(({ code, signal }) => {
    if (code !== 0 && signal !== 'SIGTERM') console.error(`worker exited (code ${code}, signal ${signal})`);
  });
  await worker.ready;
  // Everything the CLI and a second worker need to join this stack, as a paste-able block and a file.
  const handover = { ...stack.env, TEMPORAL_TASK_QUEUE: taskQueue };
  const envFile = path.join(dataDir, 'pinreset.env');
  if (opts.hold) {
    await writeFile(envFile, envFileText(handover), { mode: 0o600 });
    console.log(holdText(handover, envFile));
  }
  const connection = await Connection.connect({ address: stack.temporal!.address });
  const client = new Client({ connection, namespace: stack.temporal!.namespace });

  const started = Date.now();
  const { runId, handle } = await startRun(db, client, {
    reason: 'DEMO-T-MOBILE-2021',
    operator: process.env.USER ?? 'demo',
    taskQueue,
    // Receipts come within seconds from the local Twilio server: a 30003 is retried after 5 s
    // (production default 5 min) and the delivery deadline is 2 min (production 15 min).
    params: {
      ratePerSecond: opts.rate,
      batchSize: opts.batchSize,
      batchConcurrency: opts.concurrency,
      delivery: { retryAfterSeconds: 5, deadlineSeconds: 30 },
    },
  });
  console.log(
    `Run ${runId}: ${stack.temporal!.uiUrl}/namespaces/${stack.temporal!.namespace}/workflows/${handle.workflowId}`,
  );

  // The query fails while the workflow continues as new or no worker holds it: try next tick.
  const ticker = setInterval(() => {
    handle.query(progressQuery).then(
      (p) => process.stdout.write(`${formatProgressLine(p, Date.now())}\n`),
      () => undefined,
    );
  }, 5_000);
  const result: RunResult = await handle.result();
  clearInterval(ticker);
  const wallMs = Date.now() - started;

  const c = result.counts;
  const messages = c.sentSms + c.sentEmail;
  const summary = {
    runId,
    accounts: opts.accounts,
    planned: c.planned,
    reset: c.reset,
    skipped: c.skipped,
    sentSms: c.sentSms,
    sentEmail: c.sentEmail,
    fellBack: c.fellBack,
    unreachable: c.unreachable,
    failed: c.failed,
    notifySkipped: c.notifySkipped,
    pending: c.pending,
    ambiguous: c.ambiguous,
    exposureWindowS: result.exposureWindowMs !== undefined ? +(result.exposureWindowMs / 1000).toFixed(1) : null,
    wallTimeS: +(wallMs / 1000).toFixed(1),
    messagesPerSecond: Math.round(messages / (wallMs / 1000)),
    continuedAsNew: result.continuedAsNew,
    ...auditDeliveries(stack.twilio!, stack.smtp!),
    delivery: c.delivery ?? null,
    receipts: await auditReceipts(db, runId, stack.twilio!),
  };
  console.log('\nSummary');
  console.log(`  outcome         : ${result.status}`);
  console.log(
    `  PINs reset      : ${c.reset.toLocaleString('en-US')} of ${c.planned.toLocaleString('en-US')} (skipped ${c.skipped})`,
  );
  console.log(
    `  notified        : SMS ${c.sentSms.toLocaleString('en-US')}, email ${c.sentEmail.toLocaleString('en-US')} (fell back ${c.fellBack})`,
  );
  console.log(
    `  not notified    : unreachable ${c.unreachable}, failed ${c.failed}, skipped ${c.notifySkipped}, pending ${c.pending}, ambiguous ${c.ambiguous}`,
  );
  console.log(`  exposure window : ${summary.exposureWindowS} s (start to last PIN invalidated)`);
  console.log(`  wall time       : ${summary.wallTimeS} s, ${summary.messagesPerSecond} messages/s`);
  console.log(
    `  delivered       : ${summary.sms} SMS (${summary.smsDuplicates} duplicates, ${summary.smsRetriesAfterReceipt} deliberate retries after a 30003), ${summary.emails} emails to ${summary.emailAccounts} accounts (${summary.emailResends} same-Message-ID resends)`,
  );
  if (c.delivery) console.log(`  receipts        : ${deliveryLine(c.delivery).replace(/\*\*[^*]+\*\*: /, '')}`);
  const r = summary.receipts;
  console.log(
    `  vs local Twilio : ${r.match ? 'every final receipt matches' : `MISMATCH (${r.mismatched} differ, ${r.missing} missing)`} (${JSON.stringify(r.server)}); of ${r.fallbackDue} accounts undelivered with 30005/30006, ${r.fellBack} fell back to email and ${r.unreachable} have no usable email (unreachable)`,
  );
  console.log(JSON.stringify(summary));

  if (opts.hold) {
    console.log(
      `\nStack still up; Web UI at ${stack.temporal!.uiUrl}. The environment to use it is printed above and in ${envFile}. Ctrl-C to stop.`,
    );
    return;
  }
  await worker.kill('SIGTERM');
  await connection.close();
  await db.end();
  await stack.stop();
}

function holdText(vars: Record<string, string>, envFile: string): string {
  return [
    '',
    'The stack stays up (--hold). To use the CLI or start a second worker on it, paste into a shell:',
    '',
    '# --- pinreset demo stack ---',
    exportBlock(vars),
    '# ---',
    '',
    `or load the same variables from a file: export PINRESET_ENV_FILE=${envFile} (or copy it to .env)`,
    'then: npm run pinreset -- list   |   npm run worker (a second worker)',
    '',
  ].join('\n');
}

main().catch((err) => {
  console.error(`demo failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
