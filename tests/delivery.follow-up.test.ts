// The delivery follow-up on hand-made ledger rows: a send whose response was lost, identified by
// the reference in its callback URL; an email bounce reported by the relay's signed webhook.
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/pool';
import { createRun } from '../db/sql/create-run';
import { makeFollowUpDeliveries } from '../activities/follow-up-deliveries';
import { startCallbackServer, type CallbackServer } from '../callbacks/server';
import { DEFAULT_DELIVERY, DEFAULT_PARAMS } from '../domain/run';
import { emailMessageId } from '../domain/templates';
import { freePort } from '../stack/ports';
import { LOCAL_TWILIO } from '../stack';
import { account, insertAccounts } from './support/accounts';
import { freshDatabase, MESSAGE, startProviders, type Providers } from './support/harness';

const RUN = 'follow-up-1';

describe('the delivery follow-up', () => {
  let db: Db;
  let providers: Providers;
  let receiver: CallbackServer;
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicKey = keys.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');

  beforeAll(async () => {
    ({ db } = await freshDatabase('followup'));
    providers = await startProviders();
    await insertAccounts(db, [account(1), account(2, { phone: null })]);
    await createRun(db, { id: RUN, reason: 'INC', operator: 't', params: { ...DEFAULT_PARAMS, cohort: 'file' } });
    const port = await freePort();
    receiver = await startCallbackServer({
      db,
      authToken: LOCAL_TWILIO.authToken,
      publicUrl: `http://127.0.0.1:${port}/twilio/status`,
      port,
      sendgridPublicKey: publicKey,
    });
  });

  afterAll(async () => {
    await receiver?.close();
    await providers?.stop();
    await db?.end();
  });

  const followUp = (delivery = DEFAULT_DELIVERY) =>
    makeFollowUpDeliveries(providers.deps(db, { statusCallbackBase: 'https://hooks.example/twilio/status' }))({
      runId: RUN,
      policy: 'sms_then_email',
      delivery,
      sendsDone: true,
      judgeFromMs: 0,
      ratePerSecond: 'unlimited',
    });

  it('identifies a send whose response was lost by the reference its callback carried', async () => {
    // The send timed out after Twilio accepted it; reconciling found nothing (the list lags), so the
    // row was left failed without a SID. Then the callback came, carrying the row's reference.
    await db.query(
      `INSERT INTO ledger (run_id, account_id, reset_state, notify_state, channel, error_code, attempts, ref)
       VALUES ($1, 1, 'reset', 'failed', 'sms', 'ETIMEDOUT', 3, '0123456789ABCDEF')`,
      [RUN],
    );
    const ref = '0123456789ABCDEF';
    const sid = `SM${'c'.repeat(32)}`;
    await db.query(
      `SELECT pinreset_record_status_callbacks(ARRAY[$1], ARRAY[$2], ARRAY[$3], ARRAY['delivered'], ARRAY[4::smallint], ARRAY[NULL::text])`,
      [sid, RUN, ref],
    );
    const r = await followUp();
    expect(r.actions.adopted).toBe(1);
    const row = (
      await db.query(
        'SELECT notify_state, provider_message_id, error_code, delivery_state FROM ledger WHERE run_id = $1 AND account_id = 1',
        [RUN],
      )
    ).rows[0];
    expect(row).toEqual({
      notify_state: 'sent',
      provider_message_id: sid,
      error_code: null,
      delivery_state: 'delivered',
    });
    // Nothing was sent again.
    expect(providers.twilio.messages()).toHaveLength(0);
    // A second sweep changes nothing.
    expect((await followUp()).actions).toEqual({
      fellBack: 0,
      unreachable: 0,
      retried: 0,
      unknown: 0,
      adopted: 0,
      fetched: 0,
    });
  });

  it('records a verified SendGrid bounce as undelivered; refuses a forged or stale one', async () => {
    const messageId = emailMessageId(RUN, 2, MESSAGE.messageIdDomain);
    await db.query(
      `INSERT INTO ledger (run_id, account_id, reset_state, notify_state, channel, provider_message_id, notified_at, attempts)
       VALUES ($1, 2, 'reset', 'sent', 'email', $2, now(), 1)`,
      [RUN, messageId],
    );
    const body = JSON.stringify([
      { email: 'customer2@mail.example', event: 'processed', 'smtp-id': messageId, timestamp: 1 },
      {
        email: 'customer2@mail.example',
        event: 'bounce',
        type: 'bounce',
        status: '5.1.1',
        reason: '550 5.1.1 customer2@mail.example: no such user',
        'smtp-id': messageId,
        timestamp: 2,
      },
    ]);
    const url = `${receiver.url}/twilio/email-events`;
    const post = (b: string, ts: string, signature: string) =>
      fetch(url, {
        method: 'POST',
        body: b,
        headers: {
          'content-type': 'application/json',
          'x-twilio-email-event-webhook-signature': signature,
          'x-twilio-email-event-webhook-timestamp': ts,
        },
      }).then((res) => res.status);
    const now = String(Math.floor(Date.now() / 1000));
    const sig = (b: string, ts: string) => sign('sha256', Buffer.from(ts + b), keys.privateKey).toString('base64');
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(await post(body, now, sign('sha256', Buffer.from(now + body), other.privateKey).toString('base64'))).toBe(
      403,
    ); // another key
    expect(await post(body.replace('5.1.1', '4.2.2'), now, sig(body, now))).toBe(403); // tampered
    const old = String(Math.floor(Date.now() / 1000) - 3600);
    expect(await post(body, old, sig(body, old))).toBe(403); // replayed an hour later
    expect((await db.query('SELECT count(*)::int AS n FROM email_bounces')).rows[0].n).toBe(0);
    expect(await post(body, now, sig(body, now))).toBe(204);
    const bounce = (await db.query('SELECT message_id, event, reason FROM email_bounces')).rows;
    expect(bounce).toEqual([{ message_id: messageId, event: 'bounce', reason: '5.1.1' }]); // no address, no free text
    await followUp();
    const row = (
      await db.query(
        'SELECT delivery_state, delivery_code, delivery_action FROM ledger WHERE run_id = $1 AND account_id = 2',
        [RUN],
      )
    ).rows[0];
    expect(row).toEqual({
      delivery_state: 'undelivered',
      delivery_code: 'email_bounce:5.1.1',
      delivery_action: 'email_bounced',
    });
  });

  it('folds a receipt that arrived before its ledger row had the SID, at the next sweep', async () => {
    // The callback beat the worker's outcome write by far more than the fold's 10-s overlap (a slow
    // group write, a retry recorded after its callback): the receipt is old, the SID new.
    await insertAccounts(db, [account(6)]);
    const sid = `SM${'e'.repeat(32)}`;
    await db.query(
      `INSERT INTO sms_receipts (message_sid, run_id, ref, status, rank, error_code, first_at, updated_at, final_at)
       VALUES ($1, $2, 'REF6000000000000', 'delivered', 4, NULL, now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour')`,
      [sid, RUN],
    );
    await followUp(); // a sweep in between: the watermark moves past the receipt
    await db.query(
      `INSERT INTO ledger (run_id, account_id, reset_state, notify_state, channel, provider_message_id, notified_at, attempts, ref)
       VALUES ($1, 6, 'reset', 'sent', 'sms', $2, now(), 1, 'REF6000000000000')`,
      [RUN, sid],
    );
    await followUp();
    const row = (
      await db.query('SELECT delivery_state, delivery_final_at FROM ledger WHERE run_id = $1 AND account_id = 6', [RUN])
    ).rows[0];
    expect(row.delivery_state).toBe('delivered');
    expect(row.delivery_final_at).not.toBeNull();
  });

  it('asks Twilio once by SID before recording unknown at the deadline, and records a final status it gives', async () => {
    // Three SMS whose callbacks never reached us (the callback URL refuses; no retries asked for).
    const dead = 'http://127.0.0.1:1/twilio/status';
    providers.twilio.callbacks.setBehaviour({
      sentDelayMs: 5,
      finalDelayMs: 5,
      mix: {},
      outOfOrder: 0,
      duplicate: 0,
      rules: [{ prefix: '+1650555', outcome: 'undelivered:30005' }],
    });
    await insertAccounts(db, [account(3), account(4, { phone: '+16505550004' }), account(5)]);
    const sms = providers.deps(db).sms;
    const delivered = await sms.send({ to: '+15550000003', body: 'x', statusCallback: dead });
    const undelivered = await sms.send({ to: '+16505550004', body: 'x', statusCallback: dead });
    providers.twilio.callbacks.setBehaviour({ finalDelayMs: 600_000 }); // the third is still only 'sent'
    const pending = await sms.send({ to: '+15550000005', body: 'x', statusCallback: dead });
    await new Promise((r) => setTimeout(r, 300));
    for (const [id, sid] of [
      [3, delivered.sid],
      [4, undelivered.sid],
      [5, pending.sid],
    ] as const) {
      await db.query(
        `INSERT INTO ledger (run_id, account_id, reset_state, notify_state, channel, provider_message_id, notified_at, attempts, delivery_state, ref)
         VALUES ($1, $2, 'reset', 'sent', 'sms', $3, now() - interval '1 hour', 1, 'accepted', $4)`,
        [RUN, id, sid, `REF${id}`.padEnd(16, '0')],
      );
    }
    const budgetBefore = (await db.query("SELECT * FROM send_budgets WHERE sender = 'sms:+15550000000'")).rows[0];
    const fetchedBefore = providers.twilio.stats().fetched;
    const r = await followUp({ ...DEFAULT_DELIVERY, deadlineSeconds: 60 });
    expect(r.actions.fetched).toBe(3);
    expect(providers.twilio.stats().fetched - fetchedBefore).toBe(3);
    const rows = new Map(
      (
        await db.query(
          'SELECT account_id, delivery_state, delivery_code FROM ledger WHERE run_id = $1 AND account_id IN (3, 4, 5)',
          [RUN],
        )
      ).rows.map((x) => [Number(x.account_id), x]),
    );
    expect(rows.get(3)).toMatchObject({ delivery_state: 'delivered', delivery_code: null });
    expect(rows.get(4)).toMatchObject({ delivery_state: 'undelivered', delivery_code: '30005' });
    expect(rows.get(5)).toMatchObject({ delivery_state: 'unknown' });
    expect(r.actions.unknown).toBe(1);
    // The fetches went through the sender's budget (its row was created or moved by them).
    const budgetAfter = (await db.query("SELECT * FROM send_budgets WHERE sender = 'sms:+15550000000'")).rows[0];
    expect(budgetAfter).toBeDefined();
    expect(JSON.stringify(budgetAfter)).not.toBe(JSON.stringify(budgetBefore));
    // Once: the next sweep asks nothing more (the 30005 is now acted on: email fallback).
    const again = await followUp({ ...DEFAULT_DELIVERY, deadlineSeconds: 60 });
    expect(again.actions.fetched).toBe(0);
    expect(providers.twilio.stats().fetched - fetchedBefore).toBe(3);
    providers.twilio.callbacks.setBehaviour({ finalDelayMs: [200, 2000], rules: [] });
  });
  it("takes a fallback claim over only after the run's lease + grace, so a frozen sweep cannot mail twice", async () => {
    // A sweep claimed the fallback email and froze (SIGSTOP, GC, VM pause) before its send: when it
    // wakes it sends. A takeover before the run's lease + grace (the batches' rule) mails twice;
    // with a fixed 30 s it came before `npm run chaos`'s 40-s freeze.
    const run = 'follow-up-stale-1';
    await insertAccounts(db, [account(9)]);
    await createRun(db, {
      id: run,
      reason: 'INC-stale',
      operator: 't',
      params: { ...DEFAULT_PARAMS, cohort: 'file', leaseMs: 6_000, graceMs: 60_000 },
    });
    await db.query(
      `INSERT INTO ledger (run_id, account_id, reset_state, notify_state, channel, provider_message_id, notified_at, attempts, ref,
                          delivery_state, delivery_code, delivery_action, delivery_retry_at)
       VALUES ($1, 9, 'reset', 'sent', 'sms', $2, clock_timestamp() - interval '2 minutes', 1, 'FEDCBA9876543210',
               'undelivered', '30005', 'fallback_sending', date_trunc('milliseconds', clock_timestamp()) - interval '40 seconds')`,
      [run, `SM${'d'.repeat(32)}`],
    );
    const sweep = () =>
      makeFollowUpDeliveries(providers.deps(db, { statusCallbackBase: 'https://hooks.example/twilio/status' }))({
        runId: run,
        policy: 'sms_then_email',
        delivery: DEFAULT_DELIVERY,
        sendsDone: true,
        judgeFromMs: 0,
        ratePerSecond: 'unlimited',
      });
    const mailed = () =>
      providers.smtp.messages().filter((m) => `<${m.messageId}>` === emailMessageId(run, 9, MESSAGE.messageIdDomain));
    const action = async () =>
      (await db.query('SELECT delivery_action AS a FROM ledger WHERE run_id = $1 AND account_id = 9', [run])).rows[0].a;

    // Claimed 40 s ago: past 30 s, inside lease + grace (66 s): the claimer may still send.
    expect((await sweep()).actions.fellBack).toBe(0);
    expect(mailed()).toHaveLength(0);
    expect(await action()).toBe('fallback_sending');

    // Claimed 70 s ago: its claimer is gone; taken over and mailed once.
    await db.query(
      `UPDATE ledger SET delivery_retry_at = date_trunc('milliseconds', clock_timestamp()) - interval '70 seconds'
       WHERE run_id = $1 AND account_id = 9`,
      [run],
    );
    expect((await sweep()).actions.fellBack).toBe(1);
    expect(mailed()).toHaveLength(1);
    expect(await action()).toBe('fallback_email');
  });
});
