// Per-test-file wiring on the shared real servers: a fresh database, local Twilio and SMTP
// servers, and an in-process worker on its own task queue.
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createDatabase } from '../../stack/postgres';
import { createPool, type Db } from '../../db/pool';
import { migrate } from '../../db/migrate';
import { startFakeTwilio, type FakeTwilio, type SenderThroughput, type TwilioFaults } from '../../stack/fake-twilio';
import { startFakeSmtp, type FakeSmtp, type SmtpFaults } from '../../stack/fake-smtp';
import { LOCAL_TWILIO } from '../../stack';
import { createTwilioSms } from '../../providers/sms';
import { createSmtpEmail } from '../../providers/email';
import { createPinresetWorker } from '../../workers/create-worker';
import { dataConverterFromEnv } from '../../workers/data-converter';
import type { ActivityDeps } from '../../activities';
import type { MessageConfig } from '../../config';

// Worker state changes at INFO would bury test output.
Runtime.install({ logger: new DefaultLogger('WARN') });

export const MESSAGE: MessageConfig = {
  carrierName: 'Carrier',
  resetUrl: 'https://carrier.example/pin',
  messageIdDomain: 'pinreset.test',
};

export async function freshDatabase(label: string): Promise<{ db: Db; url: string }> {
  const name = `t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomUUID().slice(0, 8)}`;
  const url = await createDatabase(inject('databaseUrl'), name);
  const db = createPool(url, 20);
  await migrate(db);
  return { db, url };
}

export interface Providers {
  twilio: FakeTwilio;
  smtp: FakeSmtp;
  deps(db: Db, extra?: Partial<ActivityDeps>): ActivityDeps;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The local Twilio server's sender queues in tests: the sender drains 1,000 segments/s and a
 * message that would wait over 30 s fails with 30001; the worker's sender budget is the same
 * figure (SENDERS), so a correct run never overflows.
 */
export const TEST_SENDER_QUEUES: SenderThroughput = { defaultPerSecond: 1000, perSender: {}, queueBoundMs: 30_000 };
export const SENDERS = {
  sms: { key: `sms:${LOCAL_TWILIO.from}`, defaultRate: TEST_SENDER_QUEUES.defaultPerSecond },
  email: { key: 'email:default', defaultRate: Infinity },
};

export async function startProviders(
  faults: { twilio?: Partial<TwilioFaults>; smtp?: Partial<SmtpFaults> } = {},
  throughput: Partial<SenderThroughput> = TEST_SENDER_QUEUES,
): Promise<Providers> {
  const twilio = await startFakeTwilio({
    ...LOCAL_TWILIO,
    faults: faults.twilio,
    seed: 7,
    throughput: { ...TEST_SENDER_QUEUES, ...throughput },
  });
  const smtp = await startFakeSmtp({ faults: faults.smtp, seed: 7 });
  const sms = createTwilioSms({ ...LOCAL_TWILIO, apiUrl: twilio.url, timeoutMs: 5_000 });
  const email = createSmtpEmail({ url: smtp.url, from: 'Carrier Security <security@carrier.example>' });
  return {
    twilio,
    smtp,
    deps: (db, extra) => ({ db, sms, email, message: MESSAGE, sendConcurrency: 32, senders: SENDERS, ...extra }),
    env: {
      TWILIO_ACCOUNT_SID: LOCAL_TWILIO.accountSid,
      TWILIO_AUTH_TOKEN: LOCAL_TWILIO.authToken,
      TWILIO_FROM: LOCAL_TWILIO.from,
      TWILIO_API_URL: twilio.url,
      SMTP_URL: smtp.url,
      EMAIL_FROM: 'Carrier Security <security@carrier.example>',
      CARRIER_NAME: MESSAGE.carrierName,
      RESET_URL: MESSAGE.resetUrl,
      MESSAGE_ID_DOMAIN: MESSAGE.messageIdDomain,
    },
    async stop() {
      await email.close();
      await Promise.allSettled([twilio.stop(), smtp.stop()]);
    },
  };
}

export async function temporalClient(
  address = inject('temporalAddress'),
): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address });
  return {
    client: new Client({ connection, namespace: 'default', dataConverter: dataConverterFromEnv() }),
    close: () => connection.close(),
  };
}

export interface RunningWorker {
  worker: Worker;
  taskQueue: string;
  stop(): Promise<void>;
}

/** Starts an in-process worker on a fresh task queue and returns once it polls. */
export async function startWorker(
  deps: ActivityDeps,
  taskQueue = `tq-${randomUUID()}`,
  address = inject('temporalAddress'),
): Promise<RunningWorker> {
  const connection = await NativeConnection.connect({ address });
  const worker = await createPinresetWorker({
    connection,
    namespace: 'default',
    taskQueue,
    deps,
    workflowBundlePath: inject('workflowBundlePath'),
    shutdownGraceTime: '5s',
    identity: `test-worker-${randomUUID().slice(0, 8)}`,
  });
  const running = worker.run();
  let stopped: Promise<void> | undefined;
  return {
    worker,
    taskQueue,
    stop() {
      stopped ??= (async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => undefined);
        await connection.close();
      })();
      return stopped;
    },
  };
}
