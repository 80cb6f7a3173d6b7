// `npm run worker`: one worker process. Several may run against one server; SIGTERM or SIGINT
// drains it gracefully (activities in flight get the grace time, then resume elsewhere from
// their heartbeats).
import os from 'node:os';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../config';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { createTwilioSms } from '../providers/sms';
import { createSmtpEmail } from '../providers/email';
import { assertTemplatesFit } from '../domain/template-check';
import { connectionOptions } from './connection';
import { createPinresetWorker } from './create-worker';

async function main(): Promise<void> {
  const config = loadConfig();
  // A bad template must stop the worker before it reaches a single customer.
  assertTemplatesFit(config.message);
  const db = createPool(config.database.url, config.database.poolSize);
  if (process.env.PINRESET_MIGRATE_ON_START === 'true') await migrate(db);
  const sms = createTwilioSms({ ...config.sms });
  const email = createSmtpEmail({ url: config.email.url, from: config.email.from });
  const connection = await NativeConnection.connect(await connectionOptions(config.temporal));
  const worker = await createPinresetWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundlePath: config.worker.workflowBundlePath,
    maxConcurrentActivities: config.worker.maxConcurrentActivities,
    identity: `pinreset-worker@${os.hostname()}:${process.pid}`,
    deps: { db, sms, email, message: config.message, sendConcurrency: config.worker.sendConcurrency },
  });
  console.log(JSON.stringify({ level: 'info', msg: 'worker started', taskQueue: config.temporal.taskQueue, pid: process.pid }));
  try {
    await worker.run();
  } finally {
    await Promise.allSettled([connection.close(), email.close(), db.end()]);
    console.log(JSON.stringify({ level: 'info', msg: 'worker stopped', pid: process.pid }));
  }
}

main().catch((err) => {
  console.error(JSON.stringify({ level: 'error', msg: 'worker failed', error: (err as Error).message }));
  process.exit(1);
});
