// Pause and cancel stop sending within seconds, batches in flight included (issue 14): the workflow
// writes the stop to runs.status at once, every notify attempt's lease renewal reads it within a
// second, and no provider call starts after it (claimed, unsent accounts go back in line). Two
// worker processes share each run, so "every worker" is what is measured. The latency from the
// signal to the last message the local Twilio server received is printed per trial, with the
// worst and the median, not asserted (a figure, not a test of speed); what is asserted is that
// sending really stops, and that resume continues with every customer told exactly once.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { readRunStatus } from '../run-api/run-status';
import { cancelSignal, pauseSignal, resumeSignal } from '../workflows/api';
import { account, accountSupply } from './support/accounts';
import { freshDatabase, startProviders, temporalClient, type Providers } from './support/harness';
import { until } from './support/until';
import { spawnWorkers, type WorkerProcess } from '../stack/worker-process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Trials per kind of stop (PINRESET_STOP_TRIALS to measure more). */
const TRIALS = Number(process.env.PINRESET_STOP_TRIALS ?? 5);
const ACCOUNTS_PER_TRIAL = 600;
const WORKERS = 2;

function summary(kind: string, ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const median =
    sorted.length % 2
      ? sorted[(sorted.length - 1) / 2]
      : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return `[stop-latency] ${kind}: ${ms.length} trials on ${WORKERS} worker processes: worst ${sorted[sorted.length - 1]} ms, median ${median} ms (all: ${ms.join(', ')} ms)`;
}

describe('stop latency', () => {
  let db: Db;
  let providers: Providers;
  let workers: WorkerProcess[] = [];
  let client: Client;
  let closeClient: () => Promise<void>;
  const taskQueue = `stop-latency-${Date.now()}`;
  const addAccounts = accountSupply(() => db);

  beforeAll(async () => {
    let url: string;
    ({ db, url } = await freshDatabase('stop-latency'));
    providers = await startProviders();
    workers = await spawnWorkers(
      {
        ...providers.env,
        DATABASE_URL: url,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_TASK_QUEUE: taskQueue,
        WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
        SEND_CONCURRENCY: '32',
      },
      WORKERS,
    );
    ({ client, close: closeClient } = await temporalClient());
  }, 120_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  /** Messages to these accounts at the local Twilio server, with when each was received. */
  const received = (ids: number[]) => {
    const phones = new Set(ids.map((id) => account(id).phone));
    return providers.twilio.messages().filter((m) => phones.has(m.to));
  };
  const params = { batchSize: 50, batchConcurrency: 6, ratePerSecond: 100 };

  it(
    `pause stops every batch in flight within seconds, ${TRIALS} trials; resume continues, nobody twice`,
    async () => {
      const latencies: number[] = [];
      for (let trial = 1; trial <= TRIALS; trial++) {
        const ids = await addAccounts(ACCOUNTS_PER_TRIAL);
        const reason = `INC-stop-pause-${trial}`;
        const { runId, handle } = await startRun(db, client, {
          reason,
          operator: 't',
          taskQueue,
          accountIds: ids,
          params,
        });
        await until('sending at the rate', async () => received(ids).length > 150);
        const signalledAt = Date.now();
        await handle.signal(pauseSignal, { reason: 'stop-latency drill' });
        // `status` right after the pause reads the ledger after it, not a checkpoint taken before:
        // its "in flight" says what is still being sent now.
        const stopAt = await until(
          'the pause recorded',
          async () => {
            const r = await db.query<{ t: Date | null }>(
              `SELECT stop_requested_at AS t FROM runs WHERE id = $1 AND status = 'paused'`,
              [runId],
            );
            return r.rows[0]?.t ?? undefined;
          },
          10_000,
          20,
        );
        const justPaused = await readRunStatus(db, { unavailable: 'checkpoint only' }, runId, {
          queryTimeoutMs: 1_000,
        });
        expect(new Date(justPaused.asOf).getTime()).toBeGreaterThanOrEqual(stopAt.getTime());
        await sleep(5_000);
        const settledView = await readRunStatus(db, { unavailable: 'checkpoint only' }, runId, {
          queryTimeoutMs: 1_000,
        });
        expect(settledView.live?.inFlight).toBe(0); // status: nothing in flight once stopped
        const atPause = received(ids);
        const last = Math.max(...atPause.map((m) => m.receivedAtMs));
        latencies.push(last - signalledAt);
        console.log(
          `[stop-latency] pause trial ${trial}: last provider call ${last - signalledAt} ms after the signal; ${atPause.length} of ${ids.length} sent`,
        );
        await sleep(2_000);
        expect(received(ids).length).toBe(atPause.length); // really stopped
        expect(atPause.length).toBeLessThan(ids.length);
        const stuck = await db.query(
          `SELECT count(*)::int AS n FROM ledger WHERE run_id = $1 AND notify_state = 'sending'`,
          [runId],
        );
        expect(stuck.rows[0].n).toBe(0); // claimed and unsent went back in line

        await handle.signal(resumeSignal);
        const result = await handle.result();
        expect(result.counts).toMatchObject({ sentSms: ids.length, pending: 0 });
        const perPhone = new Map<string, number>();
        for (const m of received(ids)) perPhone.set(m.to, (perPhone.get(m.to) ?? 0) + 1);
        expect(perPhone.size).toBe(ids.length);
        expect([...perPhone.values()].every((n) => n === 1)).toBe(true);
      }
      console.log(summary('pause', latencies));
    },
    TRIALS * 90_000,
  );

  it(
    `cancel stops every batch in flight within seconds, ${TRIALS} trials, and leaves nothing half-done`,
    async () => {
      const latencies: number[] = [];
      for (let trial = 1; trial <= TRIALS; trial++) {
        const ids = await addAccounts(ACCOUNTS_PER_TRIAL);
        const { runId, handle } = await startRun(db, client, {
          reason: `INC-stop-cancel-${trial}`,
          operator: 't',
          taskQueue,
          accountIds: ids,
          params,
        });
        await until('sending at the rate', async () => received(ids).length > 150);
        const signalledAt = Date.now();
        await handle.signal(cancelSignal, { reason: 'stop-latency drill' });
        const result = await handle.result();
        await sleep(2_000); // a straggler from a worker that missed the stop would land here
        const sent = received(ids);
        const last = Math.max(...sent.map((m) => m.receivedAtMs));
        latencies.push(last - signalledAt);
        console.log(
          `[stop-latency] cancel trial ${trial}: last provider call ${last - signalledAt} ms after the signal; ${sent.length} of ${ids.length} sent`,
        );
        expect(result.status).toBe('cancelled');
        expect(sent.length).toBeLessThan(ids.length);
        const states = await db.query(
          `SELECT notify_state, count(*)::int AS n FROM ledger WHERE run_id = $1 GROUP BY 1`,
          [runId],
        );
        const by = Object.fromEntries(states.rows.map((r) => [r.notify_state, r.n]));
        expect(by.sending).toBeUndefined();
        expect(by.sent).toBe(sent.length);
      }
      console.log(summary('cancel', latencies));
    },
    TRIALS * 60_000,
  );
});
