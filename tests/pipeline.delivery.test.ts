// Delivery truth end to end: a run on the real stack whose SMS get status callbacks from the
// local Twilio server (signed, delayed, reordered, repeated), through the real receiver, into
// the ledger; and what the run does about each outcome.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startCallbackServer, type CallbackServer } from '../callbacks/server';
import { startFakeTwilio, type FakeTwilio } from '../stack/fake-twilio';
import { startFakeSmtp, type FakeSmtp } from '../stack/fake-smtp';
import { createTwilioSms } from '../providers/sms';
import { createSmtpEmail } from '../providers/email';
import { freePort } from '../stack/ports';
import { LOCAL_TWILIO } from '../stack';
import { startRun } from '../run-api/start-run';
import type { ActivityDeps } from '../activities';
import { account, insertAccounts } from './support/accounts';
import { freshDatabase, MESSAGE, startWorker, temporalClient, type RunningWorker } from './support/harness';
import { until } from './support/until';

const phone = (prefix: string, id: number) => `${prefix}${String(id).padStart(4, '0')}`;

describe('delivery receipts acted on by the run', () => {
  let db: Db;
  let twilio: FakeTwilio;
  let smtp: FakeSmtp;
  let receiver: CallbackServer;
  let receiverPort: number;
  let publicUrl: string;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  let deps: ActivityDeps;

  beforeAll(async () => {
    ({ db } = await freshDatabase('delivery'));
    receiverPort = await freePort();
    publicUrl = `http://127.0.0.1:${receiverPort}/twilio/status`;
    twilio = await startFakeTwilio({
      ...LOCAL_TWILIO,
      seed: 3,
      callbacks: {
        sentDelayMs: [20, 200],
        finalDelayMs: [50, 400],
        mix: {},
        outOfOrder: 0.2,
        duplicate: 0.2,
        retryDelayMs: 300,
        rules: [
          { prefix: '+1650555', outcome: 'undelivered:30005' },
          { prefix: '+1651555', outcome: 'undelivered:30006' },
          { prefix: '+1652555', outcome: 'undelivered:30003', times: 1 },
          { prefix: '+1653555', outcome: 'undelivered:30003' },
          { prefix: '+1654555', outcome: 'undelivered:30007' },
          { prefix: '+1655555', outcome: 'failed:30001' },
        ],
      },
    });
    smtp = await startFakeSmtp({ seed: 3 });
    receiver = await startCallbackServer({ db, authToken: LOCAL_TWILIO.authToken, publicUrl, port: receiverPort });
    deps = {
      db,
      message: MESSAGE,
      sendConcurrency: 16,
      sms: createTwilioSms({ ...LOCAL_TWILIO, apiUrl: twilio.url, timeoutMs: 5_000 }),
      email: createSmtpEmail({ url: smtp.url, from: 'Carrier Security <security@carrier.example>' }),
      statusCallbackBase: publicUrl,
      senders: {
        sms: { key: 'sms:delivery-test', defaultRate: Infinity },
        email: { key: 'email:delivery-test', defaultRate: Infinity },
      },
    };
    worker = await startWorker(deps);
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await receiver?.close();
    await deps?.email.close();
    await Promise.allSettled([twilio?.stop(), smtp?.stop()]);
    await db?.end();
  });

  it('records every outcome the local server decided, falls back on 30005/30006, retries 30003 once, and survives a receiver restart', async () => {
    const specs = [
      ...Array.from({ length: 60 }, (_, i) => account(i + 1)), // delivered
      ...Array.from({ length: 5 }, (_, i) => account(101 + i, { phone: phone('+1650555', 101 + i) })), // 30005 -> email
      ...Array.from({ length: 3 }, (_, i) => account(111 + i, { phone: phone('+1651555', 111 + i), email: null })), // 30006, no email -> unreachable
      ...Array.from({ length: 3 }, (_, i) => account(121 + i, { phone: phone('+1651555', 121 + i) })), // 30006 -> email
      ...Array.from({ length: 3 }, (_, i) => account(131 + i, { phone: phone('+1652555', 131 + i) })), // 30003 once, then delivered
      ...Array.from({ length: 2 }, (_, i) => account(141 + i, { phone: phone('+1653555', 141 + i) })), // 30003 twice -> email
    ];
    await insertAccounts(db, specs);
    const { handle } = await startRun(db, client, {
      runId: 'delivery-1',
      reason: 'INC-delivery',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: specs.map((s) => s.id),
      params: {
        batchSize: 20,
        batchConcurrency: 2,
        ratePerSecond: 'unlimited',
        delivery: { deadlineSeconds: 60, retryAfterSeconds: 1 },
      },
    });
    // The receiver goes away mid-run and comes back: Twilio retries what it refused meanwhile.
    await until(
      'the first receipts',
      async () => (await db.query("SELECT 1 FROM sms_receipts WHERE run_id = 'delivery-1' LIMIT 1")).rowCount,
    );
    await receiver.close();
    await new Promise((r) => setTimeout(r, 700));
    receiver = await startCallbackServer({ db, authToken: LOCAL_TWILIO.authToken, publicUrl, port: receiverPort });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(twilio.callbacks.stats().failedAttempts).toBeGreaterThan(0);
    expect(twilio.callbacks.stats().abandoned).toBe(0);

    const rows = new Map(
      (
        await db.query(
          `SELECT account_id, notify_state, channel, fell_back, delivery_state, delivery_code, delivery_action, provider_message_id, first_message_id, error_code
       FROM ledger WHERE run_id = 'delivery-1'`,
        )
      ).rows.map((r) => [Number(r.account_id), r]),
    );
    const ids = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);
    for (const id of ids(1, 60))
      expect(rows.get(id)).toMatchObject({
        notify_state: 'sent',
        channel: 'sms',
        delivery_state: 'delivered',
        delivery_action: null,
      });
    for (const id of [...ids(101, 5), ...ids(121, 3)]) {
      expect(rows.get(id)).toMatchObject({
        notify_state: 'sent',
        channel: 'email',
        fell_back: true,
        delivery_state: 'undelivered',
        delivery_action: 'fallback_email',
      });
      expect(rows.get(id)!.first_message_id).toMatch(/^SM/);
    }
    for (const id of ids(111, 3))
      expect(rows.get(id)).toMatchObject({
        notify_state: 'unreachable',
        delivery_code: '30006',
        error_code: '30006',
        delivery_action: 'unreachable',
      });
    for (const id of ids(131, 3))
      expect(rows.get(id)).toMatchObject({
        notify_state: 'sent',
        channel: 'sms',
        delivery_state: 'delivered',
        delivery_action: 'sms_retried',
      });
    for (const id of ids(141, 2))
      expect(rows.get(id)).toMatchObject({
        notify_state: 'sent',
        channel: 'email',
        delivery_code: '30003',
        delivery_action: 'fallback_email',
      });

    // Exactly the local server's records: per message, the final outcome it decided.
    const outcomes = twilio.callbacks.outcomes();
    const receipts = await db.query(
      "SELECT message_sid, status, error_code FROM sms_receipts WHERE run_id = 'delivery-1'",
    );
    expect(receipts.rowCount).toBe(outcomes.size);
    for (const r of receipts.rows)
      expect({ status: r.status, code: r.error_code }).toEqual({
        status: outcomes.get(r.message_sid)!.status,
        code: outcomes.get(r.message_sid)!.code,
      });
    // One email per fallback account, and a second SMS only for the 30003 accounts.
    expect(smtp.messages().length).toBe(5 + 3 + 2);
    const perNumber = twilio.countsByRecipient();
    for (const s of specs) expect(perNumber.get(s.phone!)).toBe(s.id >= 131 && s.id <= 142 ? 2 : 1);

    expect(result.counts.delivery).toMatchObject({
      delivered: 63,
      undelivered: 13,
      failed: 0,
      unknown: 0,
      accepted: 0,
      sent: 0,
      fellBackAfterReceipt: 10,
      byCode: { 30005: 5, 30006: 6, 30003: 2 },
    });
    const cp = await db.query("SELECT counts FROM checkpoints WHERE run_id = 'delivery-1' ORDER BY seq DESC LIMIT 1");
    expect(cp.rows[0].counts.delivery).toEqual(result.counts.delivery);
  });

  it('pauses the run on a spike of carrier filtering (30007), saying why, before the cohort is burnt', async () => {
    const specs = Array.from({ length: 300 }, (_, i) =>
      account(1001 + i, i % 4 === 0 ? { phone: phone('+1654555', 1001 + i) } : {}),
    );
    await insertAccounts(db, specs);
    const { handle } = await startRun(db, client, {
      runId: 'delivery-filtered',
      reason: 'INC-delivery',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: specs.map((s) => s.id),
      params: {
        batchSize: 25,
        batchConcurrency: 1,
        ratePerSecond: 15,
        delivery: { deadlineSeconds: 60, retryAfterSeconds: 1, filteredPauseRate: 0.1 },
      },
    });
    const run = await until(
      'the run to pause itself',
      async () => {
        const r = (await db.query("SELECT status, status_reason FROM runs WHERE id = 'delivery-filtered'")).rows[0];
        return r.status === 'paused' ? r : undefined;
      },
      90_000,
      200,
    );
    expect(run.status_reason).toMatch(/carrier-filtered \(30007\/30034; threshold 10\.0%\)/);
    const pending = await db.query(
      "SELECT count(*)::int AS n FROM ledger WHERE run_id = 'delivery-filtered' AND notify_state = 'pending'",
    );
    expect(pending.rows[0].n).toBeGreaterThan(100);
    await handle.signal('cancel', { reason: 'template filtered' });
    expect((await handle.result()).status).toBe('cancelled');
  });

  it('pauses the run when Twilio reports 30001 (sender queue overflow), saying the rate is too high', async () => {
    const specs = Array.from({ length: 200 }, (_, i) =>
      account(2001 + i, i === 10 ? { phone: phone('+1655555', 2001 + i) } : {}),
    );
    await insertAccounts(db, specs);
    const { handle } = await startRun(db, client, {
      runId: 'delivery-overflow',
      reason: 'INC-delivery',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: specs.map((s) => s.id),
      params: {
        batchSize: 20,
        batchConcurrency: 1,
        ratePerSecond: 10,
        delivery: { deadlineSeconds: 60, retryAfterSeconds: 1 },
      },
    });
    const run = await until(
      'the run to pause itself',
      async () => {
        const r = (await db.query("SELECT status, status_reason FROM runs WHERE id = 'delivery-overflow'")).rows[0];
        return r.status === 'paused' ? r : undefined;
      },
      90_000,
      200,
    );
    expect(run.status_reason).toMatch(
      /30001 \(sender queue overflow\): the rate 10 msg\/s is above the sender's throughput/,
    );
    await handle.signal('cancel', { reason: 'rate too high' });
    expect((await handle.result()).status).toBe('cancelled');
  });

  it("records 'unknown' for SMS with no final receipt by the deadline, and the run still ends", async () => {
    twilio.callbacks.setBehaviour({ finalDelayMs: 600_000 });
    try {
      const specs = Array.from({ length: 20 }, (_, i) => account(3001 + i));
      await insertAccounts(db, specs);
      const { handle } = await startRun(db, client, {
        runId: 'delivery-unknown',
        reason: 'INC-delivery',
        operator: 't',
        taskQueue: worker.taskQueue,
        accountIds: specs.map((s) => s.id),
        params: { batchSize: 20, ratePerSecond: 'unlimited', delivery: { deadlineSeconds: 3, retryAfterSeconds: 1 } },
      });
      const result = await handle.result();
      expect(result.counts.delivery).toMatchObject({ unknown: 20, delivered: 0 });
      expect(result.counts.sentSms).toBe(20);
    } finally {
      twilio.callbacks.setBehaviour({ finalDelayMs: [50, 400] });
    }
  });
});
