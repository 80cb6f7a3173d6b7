// Bad and surprising input on the real stack, in one run: accounts closed or deleted mid-run
// (before and after their reset), opt-outs arriving mid-run, two accounts sharing a phone and an
// email, unicode / empty / very long names, invalid and edge-case phone numbers, plus-tagged and
// internationalized email addresses, and a cohort file with unknown and repeated ids.
// (CSV, configuration, CLI and rate-update input have their own tests: accounts.import, config,
// cli, pipeline.controls.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { approveUpdate, progressQuery } from '../workflows/api';
import { emailMessageId } from '../domain/templates';
import { account, insertAccounts, ledgerOf, type AccountSpec, type LedgerRow } from './support/accounts';
import {
  freshDatabase,
  MESSAGE,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';
import { until } from './support/until';

const INVALID_PREFIX = '+1212555'; // the local Twilio answers 21211 (not a valid number)
const CARRIER_OPTOUT_PREFIX = '+1313555'; // 21610 (recipient replied STOP at the carrier)
const UNASSIGNED_CC = '+999'; // no such country code: the provider refuses it (21211)

const SHARED_PHONE = '+14155550777';
const SHARED_EMAIL = 'family@mail.example';
const LONG_NAME = 'Ŝ̷t̸e̵p̶h̴a̷n̸i̵e̶ '.repeat(1_000).trim(); // ~10,000 characters with combining marks

/**
 * 1..20 canary (plain mobile customers); 21, 22 changed before their reset; 23..47 odd data;
 * 48..52 changed after their reset, before their notification.
 */
function cohort(): AccountSpec[] {
  const specs: AccountSpec[] = Array.from({ length: 20 }, (_, i) => account(i + 1));
  specs.push(account(21), account(22));
  specs.push(
    // Two accounts with the same phone and email (a family line): each is notified once, so the
    // phone gets two messages, each with its own account's reference. By design.
    account(23, { phone: SHARED_PHONE, email: SHARED_EMAIL }),
    account(24, { phone: SHARED_PHONE, email: SHARED_EMAIL }),
    // Same email only, no phone: two emails, two Message-IDs.
    account(25, { phone: null, email: 'shared.inbox@mail.example' }),
    account(26, { phone: null, email: 'shared.inbox@mail.example' }),
    // Names: the pipeline never reads them, so nothing about them can break a run or leak.
    account(27, { name: '王芳 🙂 مرحبا שלום Zoë' }),
    account(28, { name: '' }),
    account(29, { name: LONG_NAME }),
    // Phones.
    account(30, { phone: 'n/a' }), // not a number: email
    account(31, { phone: '+1 415 555 0131' }), // not normalized E.164 in the record: email, not a guess
    account(32, { phone: '+442079460958' }), // valid UK mobile in E.164: SMS
    account(33, { phone: `${UNASSIGNED_CC}123456789` }), // E.164-shaped, refused by the provider: email
    account(34, { phone: '+1415555', email: null }), // too short, no email: unreachable
    account(35, { phone: '' }), // empty: email
    account(36, { phone: '+１４１５５５５０１３６' }), // full-width digits: email
    account(37, { phoneType: 'landline' }), // landline: email
    account(38, { phone: '+10005550138' }), // NANP area code 000: email
    account(39, { phone: '+14155550139 ' }), // trailing space: email
    account(40, { phone: `${INVALID_PREFIX}0140` }), // 21211: fallback email
    account(41, { phone: `${CARRIER_OPTOUT_PREFIX}0141`, email: null }), // 21610, no email: failed with the code
    account(42, { phone: null, phoneType: null, email: null }), // nothing: unreachable
    // Emails (the local SMTP server must receive each as addressed).
    account(43, { phone: null, email: 'first.last+pinreset@example.com' }),
    account(44, { phone: null, email: 'kunde@münchen.example' }),
    account(45, { phone: null, email: 'δοκιμή@παράδειγμα.δοκιμή' }),
    account(46, { phone: null, email: 'UPPER.Case@Example.COM' }),
    account(47, { phone: null, email: 'broken@@example.com' }), // invalid: unreachable
  );
  specs.push(
    account(48), // closed after its reset
    account(49), // deleted after its reset
    account(50), // SMS opt-out arrives: email instead
    account(51, { email: null }), // SMS opt-out arrives, no email: unreachable
    account(52, { phone: null }), // email opt-out arrives, no phone: unreachable
  );
  return specs;
}

describe('bad input on a real run', () => {
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  let runId: string;
  let ledger: Map<number, LedgerRow>;
  let result: Awaited<ReturnType<typeof runIt>>;
  const ref = async (id: number): Promise<string> =>
    (await db.query<{ ref: string }>('SELECT ref FROM ledger WHERE run_id = $1 AND account_id = $2', [runId, id]))
      .rows[0].ref;

  async function runIt() {
    const ids = [...Array.from({ length: 52 }, (_, i) => i + 1), 9001, 9002, 5, 9001];
    // After the cohort was chosen, before the run reset them: one account deleted, one closed.
    await db.query('DELETE FROM accounts WHERE id = 21');
    await db.query(`UPDATE accounts SET status = 'closed' WHERE id = 22`);
    const started = await startRun(db, client, {
      reason: 'INC-bad-input',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 10, batchConcurrency: 1, canary: 20, ratePerSecond: 4, autoPauseFailureRate: 1 },
    });
    runId = started.runId;
    const { handle } = started;
    await until('the canary', async () => (await handle.query(progressQuery)).awaitingApproval);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'test' }] });
    // Every PIN invalidated (resets run first), notifications going at 4/s, ids 48..52 last in line.
    await until('the resets', async () => (await handle.query(progressQuery)).resetsDoneAtMs !== undefined);
    const before = await db.query(
      `SELECT account_id, reset_state, notify_state FROM ledger WHERE run_id = $1 AND account_id BETWEEN 48 AND 52 ORDER BY 1`,
      [runId],
    );
    expect(before.rows.every((r) => r.reset_state === 'reset' && r.notify_state === 'pending')).toBe(true);
    await db.query(`UPDATE accounts SET status = 'closed' WHERE id = 48`);
    await db.query('DELETE FROM accounts WHERE id = 49');
    await db.query('UPDATE accounts SET sms_opt_out = true WHERE id IN (50, 51)');
    await db.query('UPDATE accounts SET email_opt_out = true WHERE id = 52');
    // Still unclaimed after the changes: the test really exercised "mid-run, before notification".
    const after = await db.query(
      `SELECT count(*)::int AS n FROM ledger WHERE run_id = $1 AND account_id BETWEEN 48 AND 52 AND notify_state = 'pending'`,
      [runId],
    );
    expect(after.rows[0].n).toBe(5);
    return handle.result();
  }

  beforeAll(async () => {
    ({ db } = await freshDatabase('bad-input'));
    providers = await startProviders({
      twilio: {
        permanent: [
          { prefix: INVALID_PREFIX, code: 21211 },
          { prefix: CARRIER_OPTOUT_PREFIX, code: 21610 },
          { prefix: UNASSIGNED_CC, code: 21211 },
        ],
      },
    });
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
    await insertAccounts(db, cohort());
    result = await runIt();
    ledger = await ledgerOf(db, runId);
  }, 180_000);

  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  const row = (id: number) => {
    const r = ledger.get(id);
    if (!r) throw new Error(`no ledger row for ${id}`);
    return {
      reset: r.reset_state,
      notify: r.notify_state,
      channel: r.channel,
      fellBack: r.fell_back,
      error: r.error_code,
      v: r.credential_version,
    };
  };
  const smsTo = (phone: string) => providers.twilio.messages().filter((m) => m.to === phone);
  const mailFor = (id: number) =>
    providers.smtp.messages().filter((m) => `<${m.messageId}>` === emailMessageId(runId, id, MESSAGE.messageIdDomain));

  it('completes, with every cohort account settled and a reason for each one not notified', () => {
    expect(result.status).toBe('completed');
    // 52 accounts + 2 unknown ids; the repeated ids (5, 9001) are one row each.
    expect(ledger.size).toBe(54);
    expect(result.counts.pending).toBe(0);
    for (const [id, r] of ledger) {
      expect(['sent', 'unreachable', 'failed', 'skipped'], `account ${id}`).toContain(r.notify_state);
      if (r.notify_state !== 'sent') expect(r.error_code, `account ${id}`).toBeTruthy();
    }
    expect(providers.twilio.duplicates().map((d) => d.to)).toEqual([SHARED_PHONE]);
  });

  it('closed or deleted before its reset: skipped with the reason, PIN untouched', async () => {
    expect(row(21)).toMatchObject({ reset: 'skipped', notify: 'skipped', error: 'account_deleted', v: null });
    expect(row(22)).toMatchObject({ reset: 'skipped', notify: 'skipped', error: 'account_closed', v: 1 });
    expect(smsTo(account(22).phone!)).toHaveLength(0);
  });

  it('closed or deleted after its reset, before its notification: PIN reset, notification skipped with the reason', async () => {
    expect(row(48)).toMatchObject({ reset: 'reset', notify: 'skipped', error: 'account_closed', v: 2 });
    expect(row(49)).toMatchObject({ reset: 'reset', notify: 'skipped', error: 'account_deleted', v: null });
    const pin = await db.query('SELECT pin_status, pin_hash IS NULL AS cleared FROM accounts WHERE id = 48');
    expect(pin.rows[0]).toEqual({ pin_status: 'reset_required', cleared: true });
    expect(smsTo(account(48).phone!)).toHaveLength(0);
    expect(smsTo(account(49).phone!)).toHaveLength(0);
    expect(result.counts.notifySkipped).toBe(2);
    expect(result.counts.skipped).toBe(4); // 21, 22 and the two unknown ids
  });

  it('an SMS opt-out arriving mid-run: no SMS; email instead, or unreachable without one', () => {
    expect(row(50)).toMatchObject({ reset: 'reset', notify: 'sent', channel: 'email', fellBack: false });
    expect(smsTo(account(50).phone!)).toHaveLength(0);
    expect(mailFor(50).map((m) => m.to)).toEqual([[account(50).email]]);
    expect(row(51)).toMatchObject({ notify: 'unreachable', error: 'opted_out' });
    expect(smsTo(account(51).phone!)).toHaveLength(0);
    expect(row(52)).toMatchObject({ notify: 'unreachable', error: 'opted_out' });
    expect(mailFor(52)).toHaveLength(0);
  });

  it('two accounts sharing a phone and an email: each notified once, so the phone gets two distinct messages', async () => {
    expect(row(23)).toMatchObject({ notify: 'sent', channel: 'sms' });
    expect(row(24)).toMatchObject({ notify: 'sent', channel: 'sms' });
    const bodies = smsTo(SHARED_PHONE).map((m) => m.body);
    expect(bodies).toHaveLength(2);
    const [ref23, ref24] = [await ref(23), await ref(24)];
    expect(bodies.some((b) => b.endsWith(`Ref ${ref23}`))).toBe(true);
    expect(bodies.some((b) => b.endsWith(`Ref ${ref24}`))).toBe(true);
    // Email only: two mails, two Message-IDs, one per account.
    expect(mailFor(25)).toHaveLength(1);
    expect(mailFor(26)).toHaveLength(1);
    expect(
      new Set(
        providers.smtp
          .messages()
          .filter((m) => m.to.includes('shared.inbox@mail.example'))
          .map((m) => m.messageId),
      ).size,
    ).toBe(2);
  });

  it('unicode, empty and very long names change nothing, and appear in no message', () => {
    for (const id of [27, 28, 29])
      expect(row(id)).toMatchObject({ reset: 'reset', notify: 'sent', channel: 'sms', v: 2 });
    for (const m of providers.twilio.messages()) {
      expect(m.body).not.toContain('王芳');
      expect(m.body).not.toContain('Ŝ');
      expect(m.encoding).toBe('GSM-7');
      expect(m.numSegments).toBe(1);
    }
  });

  it('invalid and edge-case phone numbers: SMS only to valid mobile E.164, otherwise email or a reason', () => {
    expect(row(32)).toMatchObject({ notify: 'sent', channel: 'sms' });
    expect(smsTo('+442079460958')).toHaveLength(1);
    for (const id of [30, 31, 35, 36, 37, 38, 39])
      expect(row(id), `account ${id}`).toMatchObject({ notify: 'sent', channel: 'email', fellBack: false });
    expect(row(33)).toMatchObject({ notify: 'sent', channel: 'email', fellBack: true, error: '21211' });
    expect(row(40)).toMatchObject({ notify: 'sent', channel: 'email', fellBack: true, error: '21211' });
    expect(row(34)).toMatchObject({ notify: 'unreachable', error: 'invalid_number' });
    expect(row(41)).toMatchObject({ notify: 'failed', channel: 'sms', error: '21610' });
    expect(row(42)).toMatchObject({ notify: 'unreachable', error: 'no_contact' });
    // Nothing was sent to a malformed number; the provider saw only E.164.
    for (const m of providers.twilio.messages()) expect(m.to).toMatch(/^\+[1-9]\d{7,14}$/);
    for (const raw of ['n/a', '+1 415 555 0131', '+１４１５５５５０１３６', '+10005550138', '+14155550139 '])
      expect(smsTo(raw)).toHaveLength(0);
  });

  it('plus-tagged, internationalized and mixed-case addresses reach the SMTP server as addressed', () => {
    expect(mailFor(43).map((m) => m.to)).toEqual([['first.last+pinreset@example.com']]);
    expect(mailFor(44).map((m) => m.to)).toEqual([['kunde@münchen.example']]);
    expect(mailFor(45).map((m) => m.to)).toEqual([['δοκιμή@παράδειγμα.δοκιμή']]);
    // Domains are case-insensitive (nodemailer lower-cases them); the local part is kept.
    expect(mailFor(46).map((m) => m.to)).toEqual([['UPPER.Case@example.com']]);
    for (const id of [43, 44, 45, 46]) expect(row(id)).toMatchObject({ notify: 'sent', channel: 'email' });
    expect(row(47)).toMatchObject({ notify: 'unreachable', error: 'invalid_email' });
    expect(providers.smtp.messages().some((m) => m.to.some((t) => t.includes('broken')))).toBe(false);
  });

  it('a cohort with unknown and repeated ids: unknown ones skipped as account_deleted, repeats counted once', async () => {
    expect(row(9001)).toMatchObject({ reset: 'skipped', notify: 'skipped', error: 'account_deleted' });
    expect(row(9002)).toMatchObject({ reset: 'skipped', notify: 'skipped', error: 'account_deleted' });
    expect(smsTo(account(5).phone!)).toHaveLength(1);
    expect(result.counts.planned).toBe(54);
    const created = await db.query('SELECT count(*)::int AS n FROM accounts WHERE id IN (9001, 9002)');
    expect(created.rows[0].n).toBe(0);
  });

  it('every other account: reset once and notified once', () => {
    const normal = [...Array.from({ length: 20 }, (_, i) => i + 1)];
    for (const id of normal) expect(row(id)).toMatchObject({ reset: 'reset', notify: 'sent', channel: 'sms', v: 2 });
    for (const id of normal) expect(smsTo(account(id).phone!)).toHaveLength(1);
  });
});
