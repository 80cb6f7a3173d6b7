// The status-callback receiver against a real PostgreSQL, fed by hand-signed requests (to tamper
// with them) and by the local Twilio server's own callbacks (signed like Twilio's).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import pg from 'pg';
import twilio from 'twilio';
import type { Db } from '../db/pool';
import { startCallbackServer, type CallbackServer } from '../callbacks/server';
import { statusCallbackUrl } from '../domain/delivery';
import { createTwilioSms } from '../providers/sms';
import { startFakeTwilio, type FakeTwilio } from '../stack/fake-twilio';
import { freePort } from '../stack/ports';
import { LOCAL_TWILIO } from '../stack';
import { freshDatabase } from './support/harness';
import { until } from './support/until';

const TOKEN = LOCAL_TWILIO.authToken;
const sid = (n: number) => `SM${n.toString(16).padStart(32, '0')}`;

async function post(url: string, params: Record<string, string>, signature?: string, extraBody = ''): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (signature !== undefined) headers['x-twilio-signature'] = signature;
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(params).toString() + extraBody });
  await res.text();
  return res.status;
}

const sign = (url: string, params: Record<string, string>, token: string = TOKEN) =>
  twilio.getExpectedTwilioSignature(token, url, params);

describe('the status-callback receiver', () => {
  let db: Db;
  let dbName: string;
  let server: CallbackServer;
  let port: number;
  let publicUrl: string;

  const receipt = async (messageSid: string) =>
    (
      await db.query('SELECT status, error_code, run_id, ref, rank FROM sms_receipts WHERE message_sid = $1', [
        messageSid,
      ])
    ).rows[0];

  const start = async () => {
    server = await startCallbackServer({ db, authToken: TOKEN, publicUrl, port, maxBodyBytes: 4096 });
  };

  beforeAll(async () => {
    let url: string;
    ({ db, url } = await freshDatabase('callbacks'));
    dbName = new URL(url).pathname.slice(1);
    port = await freePort();
    // The public URL as Twilio would call it: another host name than the one we listen on.
    publicUrl = `https://hooks.carrier.example/twilio/status`;
    await start();
  });

  afterAll(async () => {
    await server?.close();
    await db?.end();
  });

  const local = (callbackUrl: string) => {
    const u = new URL(callbackUrl);
    return `${server.url}${u.pathname}${u.search}`;
  };

  it('accepts a correctly signed callback and records it with its run and reference', async () => {
    const cb = statusCallbackUrl(publicUrl, 'run-1', 'REF00001');
    expect(cb).toBe('https://hooks.carrier.example/twilio/status?run=run-1&ref=REF00001#rc=5&rp=all');
    const signedUrl = cb.slice(0, cb.indexOf('#'));
    const params = { MessageSid: sid(1), MessageStatus: 'sent', AccountSid: LOCAL_TWILIO.accountSid };
    expect(await post(local(cb), params, sign(signedUrl, params))).toBe(204);
    expect(await receipt(sid(1))).toEqual({
      status: 'sent',
      error_code: null,
      run_id: 'run-1',
      ref: 'REF00001',
      rank: 3,
    });
  });

  it('refuses missing, wrong, tampered and replayed-with-changed-status signatures with 403 and changes nothing', async () => {
    const cb = statusCallbackUrl(publicUrl, 'run-1', 'REF00002');
    const signedUrl = cb.slice(0, cb.indexOf('#'));
    const params = { MessageSid: sid(2), MessageStatus: 'delivered' };
    const good = sign(signedUrl, params);
    expect(await post(local(cb), params)).toBe(403); // missing
    expect(await post(local(cb), params, 'AAAA' + good.slice(4))).toBe(403); // wrong
    expect(await post(local(cb), params, sign(signedUrl, params, 'another-token'))).toBe(403); // other account's token
    expect(await post(local(cb), { ...params, ErrorCode: '30007' }, good)).toBe(403); // tampered body
    // Signed for another URL: another host, or another row's reference in the query.
    expect(
      await post(local(cb), params, sign(signedUrl.replace('hooks.carrier.example', 'evil.example'), params)),
    ).toBe(403);
    expect(await post(local(cb).replace('REF00002', 'REF00009'), params, good)).toBe(403);
    expect(await receipt(sid(2))).toBeUndefined();
    // The genuine one goes through; replaying its signature with another status does not.
    expect(await post(local(cb), params, good)).toBe(204);
    expect(await post(local(cb), { ...params, MessageStatus: 'undelivered', ErrorCode: '30005' }, good)).toBe(403);
    expect(await receipt(sid(2))).toMatchObject({ status: 'delivered', error_code: null });
    const metrics = server.metrics();
    expect(metrics).toMatch(/pinreset_callbacks_total\{kind="twilio_status",result="forbidden"\} 7/);
  });

  it('answers 413 to an oversized body and 400 to a signed callback without a usable status', async () => {
    const cb = statusCallbackUrl(publicUrl, 'run-1', 'REF00003');
    const signedUrl = cb.slice(0, cb.indexOf('#'));
    const big = { MessageSid: sid(3), MessageStatus: 'sent', Padding: 'x'.repeat(5000) };
    expect(await post(local(cb), big, sign(signedUrl, big))).toBe(413);
    const bad = { MessageSid: sid(3), MessageStatus: 'exploded' };
    expect(await post(local(cb), bad, sign(signedUrl, bad))).toBe(400);
    expect(await receipt(sid(3))).toBeUndefined();
  });

  it('is order-independent and idempotent: a late sent never downgrades delivered; repeats change nothing', async () => {
    const cb = statusCallbackUrl(publicUrl, 'run-1', 'REF00004');
    const signedUrl = cb.slice(0, cb.indexOf('#'));
    const send = (p: Record<string, string>) => post(local(cb), p, sign(signedUrl, p));
    const delivered = { MessageSid: sid(4), MessageStatus: 'delivered' };
    expect(await send(delivered)).toBe(204);
    const before = (await db.query('SELECT updated_at, callbacks FROM sms_receipts WHERE message_sid = $1', [sid(4)]))
      .rows[0];
    expect(await send({ MessageSid: sid(4), MessageStatus: 'sent' })).toBe(204);
    expect(await send(delivered)).toBe(204);
    expect(await send({ MessageSid: sid(4), MessageStatus: 'undelivered', ErrorCode: '30003' })).toBe(204);
    expect(await receipt(sid(4))).toMatchObject({ status: 'delivered', error_code: null, rank: 4 });
    const after = (await db.query('SELECT updated_at, callbacks FROM sms_receipts WHERE message_sid = $1', [sid(4)]))
      .rows[0];
    expect(after).toEqual(before);
    // The other order: sent, then undelivered with its code.
    await send({ MessageSid: sid(5), MessageStatus: 'sent' });
    await send({ MessageSid: sid(5), MessageStatus: 'undelivered', ErrorCode: '30006' });
    await send({ MessageSid: sid(5), MessageStatus: 'sending' });
    expect(await receipt(sid(5))).toMatchObject({ status: 'undelivered', error_code: '30006' });
  });

  it('answers 503 while PostgreSQL refuses connections, then records the retried callback', async () => {
    const cb = statusCallbackUrl(publicUrl, 'run-1', 'REF00006');
    const signedUrl = cb.slice(0, cb.indexOf('#'));
    const params = { MessageSid: sid(6), MessageStatus: 'delivered' };
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS false`);
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [dbName],
      );
      expect(await post(local(cb), params, sign(signedUrl, params))).toBe(503);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(503);
    } finally {
      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    expect(await post(local(cb), params, sign(signedUrl, params))).toBe(204);
    expect(await receipt(sid(6))).toMatchObject({ status: 'delivered' });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  describe('fed by the local Twilio server', () => {
    let fake: FakeTwilio;
    beforeAll(async () => {
      fake = await startFakeTwilio({
        ...LOCAL_TWILIO,
        seed: 11,
        callbacks: {
          sentDelayMs: [5, 30],
          finalDelayMs: [5, 60],
          outOfOrder: 0.3,
          duplicate: 0.3,
          retryDelayMs: 300,
          mix: { 'undelivered:30003': 0.1, 'undelivered:30005': 0.1, 'undelivered:30007': 0.1, 'failed:30001': 0.05 },
        },
      });
    });
    afterAll(async () => fake?.stop());

    // The receiver is reached at its local address; Twilio signs the public URL it was given.
    // Here both are the same: the local server calls exactly the URL it was handed.
    const sender = () => createTwilioSms({ ...LOCAL_TWILIO, apiUrl: fake.url, timeoutMs: 2_000 });

    it('records exactly the final outcome the server decided for every message, despite reordering and repeats', async () => {
      await server.close();
      publicUrl = `http://127.0.0.1:${port}/twilio/status`;
      await start();
      const sms = sender();
      const sids: string[] = [];
      for (let i = 0; i < 200; i++) {
        const m = await sms.send({
          to: `+1415555${String(i).padStart(4, '0')}`,
          body: `hello ${i}`,
          statusCallback: statusCallbackUrl(publicUrl, 'run-2', `R${i}`),
        });
        sids.push(m.sid);
      }
      await fake.callbacks.idle();
      const rows = await db.query('SELECT message_sid, status, error_code, ref FROM sms_receipts WHERE run_id = $1', [
        'run-2',
      ]);
      expect(rows.rowCount).toBe(200);
      const outcomes = fake.callbacks.outcomes();
      for (const r of rows.rows) {
        const o = outcomes.get(r.message_sid)!;
        expect({ status: r.status, code: r.error_code }).toEqual({ status: o.status, code: o.code });
      }
      expect(new Set(rows.rows.map((r) => r.ref))).toEqual(new Set(sids.map((_, i) => `R${i}`)));
      const counts = fake.callbacks.outcomeCounts();
      expect(Object.keys(counts).length).toBeGreaterThan(3); // the mix really mixed
      // Prometheus: each message counted once at its final status, repeats and reorderings not.
      const metric = (status: string, code: string) =>
        Number(
          server
            .metrics()
            .match(new RegExp(`pinreset_delivery_receipts_total\\{status="${status}",code="${code}"\\} (\\d+)`))?.[1] ??
            0,
        );
      for (const [k, n] of Object.entries(counts)) {
        const [status, code = ''] = k.split(':');
        expect(metric(status, code)).toBe(n);
      }
      expect(fake.callbacks.stats()).toMatchObject({ abandoned: 0, failedAttempts: 0 });
    });

    it('identifies a message whose create response was lost by the reference in its callback URL', async () => {
      fake.setFaults({ rateDropAfterAccept: 1 });
      const sms = sender();
      const err = await sms
        .send({ to: '+14155550999', body: 'lost', statusCallback: statusCallbackUrl(publicUrl, 'run-3', 'LOSTREF1') })
        .catch((e) => e);
      expect(sms.classify(err).kind).toBe('ambiguous');
      fake.setFaults({ rateDropAfterAccept: 0 });
      const row = await until(
        'the callback of the lost send',
        async () =>
          (
            await db.query(
              "SELECT message_sid, rank FROM sms_receipts WHERE run_id = 'run-3' AND ref = 'LOSTREF1' AND rank >= 4",
            )
          ).rows[0],
      );
      expect(row.message_sid).toBe(fake.messages().at(-1)!.sid);
    });

    it('survives a receiver restart: Twilio retries the callbacks refused meanwhile', async () => {
      const sms = sender();
      fake.callbacks.setBehaviour({ sentDelayMs: [300, 600], finalDelayMs: [50, 200], outOfOrder: 0, duplicate: 0 });
      await server.close();
      for (let i = 0; i < 40; i++)
        await sms.send({
          to: `+1415556${String(i).padStart(4, '0')}`,
          body: `again ${i}`,
          statusCallback: statusCallbackUrl(publicUrl, 'run-4', `S${i}`),
        });
      await until('some callbacks refused', async () => fake.callbacks.stats().failedAttempts > 0, 10_000, 20);
      await start();
      await fake.callbacks.idle();
      const n = await db.query("SELECT count(*)::int AS n FROM sms_receipts WHERE run_id = 'run-4' AND rank >= 4");
      expect(n.rows[0].n).toBe(40);
      expect(fake.callbacks.stats().abandoned).toBe(0);
    });
  });
});
