// The local stack: real Temporal (dev server + Web UI), real PostgreSQL, and local servers that
// speak the Twilio REST API and SMTP. One module for the demo, the tests and the benchmarks.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../db/migrate';
import { startPostgres, type LocalPostgres } from './postgres';
import { startTemporal, type LocalTemporal } from './temporal';
import { startFakeTwilio, type FakeTwilio, type SenderThroughput, type TwilioFaults } from './fake-twilio';
import { startFakeSmtp, type FakeSmtp, type SmtpFaults } from './fake-smtp';
import type { CallbackBehaviour } from './twilio-status-callbacks';
import { startCallbackServer, type CallbackServer } from '../callbacks/server';
import { createPool } from '../db/pool';
import { freePort } from './ports';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Credentials of the local Twilio server: fake values in the real formats. */
export const LOCAL_TWILIO = {
  accountSid: 'AC00000000000000000000000000000001',
  authToken: 'local-auth-token',
  from: '+15550000000',
} as const;

/**
 * Sender queues of the local Twilio server, on by default: every sender drains at 1,000
 * segments/s (a high-throughput short code) and a message that would wait over a minute fails
 * with 30001 (Twilio: 10 h; short so a run above the throughput shows it within a drill). The
 * stack's sender budget (SMS_SENDER_RATE) is the same figure, so a correct run never sees 30001.
 */
export const LOCAL_SENDER_QUEUES: SenderThroughput = { defaultPerSecond: 1000, perSender: {}, queueBoundMs: 60_000 };

export interface StackOptions {
  /** Where the stack keeps its data (PostgreSQL cluster, Temporal SQLite file). */
  dataDir: string;
  keepData?: boolean;
  twilioFaults?: Partial<TwilioFaults>;
  smtpFaults?: Partial<SmtpFaults>;
  /** Status callbacks of the local Twilio server (default: a realistic mix, see twilio-status-callbacks.ts). */
  twilioCallbacks?: Partial<CallbackBehaviour>;
  /** Sender queues of the local Twilio server (default LOCAL_SENDER_QUEUES); 'off': no queue, unlimited budget. */
  twilioThroughput?: Partial<SenderThroughput> | 'off';
  temporalDynamicConfig?: Record<string, string | number | boolean>;
  /** Start only some parts (tests that need no Temporal, say). */
  parts?: { temporal?: boolean; postgres?: boolean; providers?: boolean };
}

export interface Stack {
  temporal?: LocalTemporal;
  postgres?: LocalPostgres;
  twilio?: FakeTwilio;
  smtp?: FakeSmtp;
  /** The status-callback receiver (callbacks/server.ts), when PostgreSQL and the providers run. */
  callbacks?: CallbackServer;
  /** Environment for worker and script processes pointed at this stack (see config/index.ts). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const parts = { temporal: true, postgres: true, providers: true, ...opts.parts };
  const throughput = opts.twilioThroughput === 'off' ? undefined : { ...LOCAL_SENDER_QUEUES, ...opts.twilioThroughput };
  const dataDir = path.resolve(opts.dataDir);
  // A fresh stack starts with no workflows either: a run left in an old Temporal database would
  // wake up against the fresh PostgreSQL.
  if (!opts.keepData) {
    for (const suffix of ['', '-wal', '-shm', '-journal'])
      await rm(path.join(dataDir, `temporal.sqlite${suffix}`), { force: true });
  }
  const started: Array<{ stop(): Promise<void> }> = [];
  const stop = async () => {
    await Promise.allSettled(started.reverse().map((p) => p.stop()));
  };
  try {
    const [temporal, postgres, twilio, smtp] = await Promise.all([
      parts.temporal
        ? startTemporal({
            dbFile: path.join(dataDir, 'temporal.sqlite'),
            dynamicConfig: opts.temporalDynamicConfig,
          }).then(keep)
        : undefined,
      parts.postgres
        ? startPostgres({ dataDir: path.join(dataDir, 'postgres'), keepData: opts.keepData }).then(keep)
        : undefined,
      parts.providers
        ? startFakeTwilio({
            ...LOCAL_TWILIO,
            faults: opts.twilioFaults,
            callbacks: opts.twilioCallbacks,
            throughput,
          }).then(keep)
        : undefined,
      parts.providers ? startFakeSmtp({ faults: opts.smtpFaults }).then(keep) : undefined,
    ]);
    if (postgres) {
      const pool = new pg.Pool({ connectionString: postgres.url, max: 1 });
      try {
        await migrate(pool);
      } finally {
        await pool.end();
      }
    }
    // The receiver, as `npm run callbacks` would run it; Twilio (here: the local server) calls it.
    let callbacks: CallbackServer | undefined;
    if (postgres && twilio) {
      const port = await freePort();
      const db = createPool(postgres.url, 10);
      const publicUrl = `http://127.0.0.1:${port}/twilio/status`;
      callbacks = await startCallbackServer({ db, authToken: LOCAL_TWILIO.authToken, publicUrl, port });
      const server = callbacks;
      keep({ stop: () => server.close().then(() => db.end()) });
    }
    const env: Record<string, string> = {};
    if (postgres) env.DATABASE_URL = postgres.url;
    if (temporal) {
      env.TEMPORAL_ADDRESS = temporal.address;
      env.TEMPORAL_NAMESPACE = temporal.namespace;
      if (temporal.uiUrl) env.TEMPORAL_UI_URL = temporal.uiUrl;
    }
    if (twilio) {
      Object.assign(env, {
        TWILIO_ACCOUNT_SID: LOCAL_TWILIO.accountSid,
        TWILIO_AUTH_TOKEN: LOCAL_TWILIO.authToken,
        TWILIO_FROM: LOCAL_TWILIO.from,
        TWILIO_API_URL: twilio.url,
        // The sender budget all runs share is the local sender's throughput (or none without queues).
        SMS_SENDER_RATE: throughput
          ? String(throughput.perSender[LOCAL_TWILIO.from] ?? throughput.defaultPerSecond)
          : 'unlimited',
        EMAIL_RELAY_RATE: 'unlimited',
      });
    }
    if (callbacks)
      Object.assign(env, {
        PUBLIC_CALLBACK_URL: `http://127.0.0.1:${callbacks.port}/twilio/status`,
        CALLBACKS_PORT: String(callbacks.port),
      });
    if (smtp) Object.assign(env, { SMTP_URL: smtp.url, EMAIL_FROM: 'Carrier Security <security@carrier.example>' });
    return { temporal, postgres, twilio, smtp, callbacks, env, stop };
  } catch (err) {
    await stop();
    throw err;
  }

  function keep<T extends { stop(): Promise<void> }>(part: T): T {
    started.push(part);
    return part;
  }
}

/** Stops the stack on Ctrl-C / SIGTERM, then exits. */
export function stopOnSignals(stack: Stack): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      console.error(`\n${signal}: stopping the local stack...`);
      void stack.stop().finally(() => process.exit(130));
    });
  }
}
