// The local Twilio server's sender queues (issue 11): throughput belongs to a sender. Above it
// Twilio accepts (`queued`) and queues: receipts come late, and what would wait past the queue
// bound fails with 30001 through its status callback. The real twilio client against the server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTwilioSms } from '../providers/sms';
import { startFakeTwilio, type FakeTwilio } from '../stack/fake-twilio';
import type { SmsSender } from '../domain/types';
import { until } from './support/until';

const accountSid = 'AC' + '0123456789abcdef'.repeat(2);
const authToken = 'queue-auth-token';
const SLOW = '+15005550001';
const FAST = '+15005550002';
const BODY = 'Your PIN was reset. Set a new one in the app.';

interface Receipt {
  sid: string;
  status: string;
  code: string | null;
  at: number;
}

describe('sender queues of the local Twilio server', () => {
  let fake: FakeTwilio;
  let receiver: http.Server;
  let callbackUrl: string;
  let receipts: Receipt[] = [];
  let slow: SmsSender;
  let fast: SmsSender;

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        const f = new URLSearchParams(raw);
        receipts.push({
          sid: f.get('MessageSid')!,
          status: f.get('MessageStatus')!,
          code: f.get('ErrorCode'),
          at: Date.now(),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    callbackUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/status`;
    fake = await startFakeTwilio({
      accountSid,
      authToken,
      seed: 11,
      callbacks: { sentDelayMs: 10, finalDelayMs: 10, mix: {}, outOfOrder: 0, duplicate: 0 },
      throughput: { defaultPerSecond: Infinity, perSender: { [SLOW]: 5 }, queueBoundMs: 1_000 },
    });
    slow = createTwilioSms({ accountSid, authToken, from: SLOW, apiUrl: fake.url, timeoutMs: 5_000 });
    fast = createTwilioSms({ accountSid, authToken, from: FAST, apiUrl: fake.url, timeoutMs: 5_000 });
  });

  afterAll(async () => {
    await fake?.stop();
    await new Promise((r) => receiver?.close(r));
  });

  beforeEach(() => {
    fake.reset();
    receipts = [];
  });

  const to = (i: number) => `+1555123${String(i).padStart(4, '0')}`;

  it("accepts at once but sends from the queue at the sender's throughput: receipts come after the wait", async () => {
    const t0 = Date.now();
    const sent = await Promise.all(
      Array.from({ length: 5 }, (_, i) => slow.send({ to: to(i), body: BODY, statusCallback: callbackUrl })),
    );
    const fastSent = await fast.send({ to: to(99), body: BODY, statusCallback: callbackUrl });
    // Every create answered at once: no 429, no waiting on the HTTP call.
    expect(Date.now() - t0).toBeLessThan(700);
    // The last one is still queued: a fetch (the dependable read) says so.
    expect(await slow.fetch(sent[4].sid)).toMatchObject({ status: 'queued', errorCode: null });

    await until(
      'five delivered receipts of the slow sender',
      async () => receipts.filter((r) => r.status === 'delivered' && r.sid !== fastSent.sid).length === 5,
      10_000,
      20,
    );
    const created = new Map(fake.messages().map((m) => [m.sid, m.receivedAtMs]));
    const waits = sent
      .map(({ sid }) => receipts.find((r) => r.sid === sid && r.status === 'sent')!.at - created.get(sid)!)
      .sort((a, b) => a - b);
    // 5 segments/s: one leaves every 200 ms, so the k-th sent receipt comes >= k x 200 ms after its create.
    waits.forEach((w, k) => expect(w).toBeGreaterThanOrEqual(k * 200 - 30));
    expect(waits[4]).toBeGreaterThanOrEqual(770);
    // Another sender has its own throughput (here none): its message did not wait behind the queue.
    const fastSentReceipt = receipts.find((r) => r.sid === fastSent.sid && r.status === 'sent')!;
    expect(fastSentReceipt.at - created.get(fastSent.sid)!).toBeLessThan(waits[4]);
    expect(await slow.fetch(sent[4].sid)).toMatchObject({ status: 'delivered', errorCode: null });
    expect(fake.stats()).toMatchObject({ accepted: 6, queued: 4, queueOverflow: 0 });
  });

  it('fails what would wait past the queue bound with 30001, through its status callback', async () => {
    // 1 s bound at 5/s: waits 0, 200, ..., 1000 ms fit (6 messages), the other 4 overflow.
    const sent = await Promise.all(
      Array.from({ length: 10 }, (_, i) => slow.send({ to: to(i), body: BODY, statusCallback: callbackUrl })),
    );
    await until(
      'ten final receipts',
      async () => receipts.filter((r) => r.status !== 'sent').length === 10,
      10_000,
      20,
    );
    const finals = receipts.filter((r) => r.status !== 'sent');
    const failed = finals.filter((r) => r.status === 'failed');
    expect(failed).toHaveLength(4);
    expect(failed.every((r) => r.code === '30001')).toBe(true);
    expect(finals.filter((r) => r.status === 'delivered')).toHaveLength(6);
    // A message that never left Twilio gets no `sent` receipt.
    for (const f of failed) expect(receipts.some((r) => r.sid === f.sid && r.status === 'sent')).toBe(false);
    expect(await slow.fetch(failed[0].sid)).toMatchObject({ status: 'failed', errorCode: '30001' });
    expect(fake.callbacks.outcomeCounts()).toEqual({ delivered: 6, 'failed:30001': 4 });
    expect(fake.stats().queueOverflow).toBe(4);
    expect(sent).toHaveLength(10);
  });

  it('refuses a throughput of 0 and changes live', () => {
    expect(() => fake.setThroughput({ defaultPerSecond: 0 })).toThrow(/defaultPerSecond must be a number > 0/);
    expect(fake.setThroughput({ perSender: { [SLOW]: 5, [FAST]: 50 } }).perSender[FAST]).toBe(50);
    fake.setThroughput({ perSender: { [SLOW]: 5 } });
  });
});
