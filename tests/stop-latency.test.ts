// Pause and cancel stop sending within seconds, batches in flight included (issue 14): the workflow
// writes the stop to runs.status at once, every notify attempt's lease renewal reads it within a
// second, and no provider call starts after it (claimed, unsent accounts go back in line). The
// latency from the signal to the last message the local Twilio server received is printed, not
// asserted (a figure, not a test of speed); what is asserted is that sending really stops, and that
// resume continues with every customer told exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { cancelSignal, pauseSignal, resumeSignal } from '../workflows/api';
import { account, accountSupply } from './support/accounts';
import { freshDatabase, startProviders, startWorker, temporalClient, type Providers, type RunningWorker } from './support/harness';
import { until } from './support/until';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stop latency', () => {
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  const addAccounts = accountSupply(() => db);

  beforeAll(async () => {
    ({ db } = await freshDatabase('stop-latency'));
    providers = await startProviders();
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
  });
  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  /** Messages to these accounts at the local Twilio server, with when each was received. */
  const received = (ids: number[]) => {
    const phones = new Set(ids.map((id) => account(id).phone));
    return providers.twilio.messages().filter((m) => phones.has(m.to));
  };

  it('pause stops every batch in flight within seconds; resume continues, nobody twice', async () => {
    const ids = await addAccounts(1_500);
    const { handle } = await startRun(db, client, {
      reason: 'INC-stop-pause', operator: 't', taskQueue: worker.taskQueue, accountIds: ids,
      params: { batchSize: 100, batchConcurrency: 6, ratePerSecond: 100 },
    });
    await until('sending at the rate', async () => received(ids).length > 150);
    const signalledAt = Date.now();
    await handle.signal(pauseSignal, { reason: 'stop-latency drill' });
    await sleep(6_000);
    const atPause = received(ids);
    const last = Math.max(...atPause.map((m) => m.receivedAtMs));
    console.log(`[stop-latency] pause: last provider call ${last - signalledAt} ms after the signal; ${atPause.length} of ${ids.length} sent`);
    await sleep(3_000);
    expect(received(ids).length).toBe(atPause.length); // really stopped
    expect(atPause.length).toBeLessThan(ids.length);
    const stuck = await db.query(`SELECT count(*)::int AS n FROM ledger WHERE run_id = (SELECT id FROM runs WHERE reason = 'INC-stop-pause') AND notify_state = 'sending'`);
    expect(stuck.rows[0].n).toBe(0); // claimed and unsent went back in line

    await handle.signal(resumeSignal);
    const result = await handle.result();
    expect(result.counts).toMatchObject({ sentSms: ids.length, pending: 0 });
    const perPhone = new Map<string, number>();
    for (const m of received(ids)) perPhone.set(m.to, (perPhone.get(m.to) ?? 0) + 1);
    expect(perPhone.size).toBe(ids.length);
    expect([...perPhone.values()].every((n) => n === 1)).toBe(true);
  });

  it('cancel stops every batch in flight within seconds and leaves nothing half-done', async () => {
    const ids = await addAccounts(1_500);
    const { runId, handle } = await startRun(db, client, {
      reason: 'INC-stop-cancel', operator: 't', taskQueue: worker.taskQueue, accountIds: ids,
      params: { batchSize: 100, batchConcurrency: 6, ratePerSecond: 100 },
    });
    await until('sending at the rate', async () => received(ids).length > 150);
    const signalledAt = Date.now();
    await handle.signal(cancelSignal, { reason: 'stop-latency drill' });
    const result = await handle.result();
    const sent = received(ids);
    const last = Math.max(...sent.map((m) => m.receivedAtMs));
    console.log(`[stop-latency] cancel: last provider call ${last - signalledAt} ms after the signal; ${sent.length} of ${ids.length} sent`);
    expect(result.status).toBe('cancelled');
    expect(sent.length).toBeLessThan(ids.length);
    const states = await db.query(`SELECT notify_state, count(*)::int AS n FROM ledger WHERE run_id = $1 GROUP BY 1`, [runId]);
    const by = Object.fromEntries(states.rows.map((r) => [r.notify_state, r.n]));
    expect(by.sending).toBeUndefined();
    expect(by.sent).toBe(sent.length);
  });
});
