import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedAccounts, type SeedResult } from '../accounts/seed';
import { accountStats } from '../db/sql/account-stats';
import { isE164 } from '../domain/phone';
import { validateEmail } from '../domain/email';
import { accountsTestDb, type TestDb } from './support/accounts-pg';

const N = 20_000;
let t: TestDb;
let first: SeedResult;

/** Share of N, checked within an absolute tolerance (about 4 standard deviations at N = 20,000). */
function expectShare(count: number, share: number, tolerance: number, total = N) {
  expect(Math.abs(count / total - share), `${count}/${total} vs ${share}`).toBeLessThanOrEqual(tolerance);
}

async function digest(): Promise<string> {
  const { rows } = await t.db.query(
    `SELECT md5(string_agg(concat_ws('|', id, account_number, full_name, phone, phone_type, email, plan, status,
                                    sms_opt_out, email_opt_out, encode(pin_hash, 'hex'), encode(pin_salt, 'hex'), pin_algo), E'\\n' ORDER BY id)) AS d
     FROM accounts`,
  );
  return rows[0].d;
}

beforeAll(async () => {
  t = await accountsTestDb('accounts-seed');
  first = await seedAccounts(t.db, { count: N, seed: 42 });
});
afterAll(async () => {
  await t?.stop();
});

describe('seedAccounts', () => {
  it('inserts exactly count accounts with contiguous ids from 1', async () => {
    expect(first).toMatchObject({ count: N, firstId: 1, lastId: N, seed: 42, truncated: 0 });
    const { rows } = await t.db.query(
      'SELECT count(*)::int n, count(DISTINCT id)::int d, min(id)::int lo, max(id)::int hi FROM accounts',
    );
    expect(rows[0]).toEqual({ n: N, d: N, lo: 1, hi: N });
  });

  it('produces the documented dirt shares', () => {
    const c = first;
    expectShare(c.phone.mobile, 0.85, 0.01);
    expectShare(c.phone.landline, 0.04, 0.005);
    expectShare(c.phone.voip, 0.02, 0.004);
    expectShare(c.phone.unknownType, 0.04, 0.005);
    expectShare(c.phone.missing, 0.03, 0.005);
    expectShare(c.phone.invalid, 0.02, 0.004);
    expectShare(c.email.missing, 0.15, 0.01);
    expectShare(c.email.invalid, 0.01, 0.003);
    expectShare(c.email.valid, 0.84, 0.01);
    expectShare(c.email.plusTagged, 0.05, 0.007, c.email.valid);
    expectShare(c.email.idn, 0.09, 0.01, c.email.valid);
    expectShare(c.smsOptOut, 0.02, 0.004);
    expectShare(c.emailOptOut, 0.005, 0.002);
    expectShare(c.status.closed, 0.02, 0.004);
    expectShare(c.status.suspended, 0.01, 0.003);
    expectShare(c.sharedContact, 0.01, 0.003);
    expect(c.status.active + c.status.closed + c.status.suspended).toBe(N);
    const p = c.phone;
    expect(p.mobile + p.landline + p.voip + p.unknownType + p.missing + p.invalid).toBe(N);
  });

  it('stores what the counts claim, as judged by the domain validators the pipeline uses', async () => {
    const { rows } = await t.db.query<{ phone: string | null; phone_type: string | null; email: string | null }>(
      'SELECT phone, phone_type, email FROM accounts',
    );
    let validPhone = 0,
      invalidPhone = 0,
      landline = 0,
      validEmail = 0,
      invalidEmail = 0;
    for (const r of rows) {
      if (r.phone !== null) {
        if (isE164(r.phone)) validPhone++;
        else invalidPhone++;
      }
      if (r.phone_type === 'landline') landline++;
      if (r.email !== null) {
        if ('email' in validateEmail(r.email)) validEmail++;
        else invalidEmail++;
      }
    }
    const p = first.phone;
    expect(validPhone).toBe(p.mobile + p.landline + p.voip + p.unknownType);
    expect(invalidPhone).toBe(p.invalid);
    expect(landline).toBe(p.landline);
    expect(validEmail).toBe(first.email.valid);
    expect(invalidEmail).toBe(first.email.invalid);

    const s = await accountStats(t.db);
    expect(s.total).toBe(N);
    expect(s.phone).toEqual({ valid: validPhone, invalid: p.invalid, missing: p.missing });
    expect(s.email.missing).toBe(first.email.missing);
    expect(s.email.malformed).toBe(first.email.invalid);
    expect(s.smsOptOut).toBe(first.smsOptOut);
    expect(s.status).toEqual({
      active: first.status.active,
      closed: first.status.closed,
      suspended: first.status.suspended,
    });
    expect(s.pinAlgo).toEqual({ synthetic: N });
  });

  it('shares contact details only where it says so; valid phones are otherwise unique', async () => {
    const { rows } = await t.db.query(
      `SELECT (count(phone) - count(DISTINCT phone))::int AS dup_phones,
              (count(email) - count(DISTINCT email))::int AS dup_emails
       FROM accounts WHERE phone ~ '^\\+1[0-9]{10}$' OR phone IS NULL`,
    );
    const { dup_phones, dup_emails } = rows[0];
    expect(dup_phones).toBeLessThanOrEqual(first.sharedContact);
    expect(dup_phones).toBeGreaterThanOrEqual(Math.floor(first.sharedContact * 0.85));
    expect(dup_emails).toBeGreaterThan(0);
    expect(dup_emails).toBeLessThanOrEqual(first.sharedContact);
  });

  it('generates realistic values: 555-exchange numbers, unicode names, plans, synthetic PIN verifiers', async () => {
    const { rows } = await t.db.query(`
      SELECT count(*) FILTER (WHERE phone ~ '^\\+1[2-9][0-9]{2}555[0-9]{4}$')::int AS fictional,
             count(*) FILTER (WHERE phone ~ '^\\+')::int AS plus,
             count(*) FILTER (WHERE full_name ~ '[^\\x01-\\x7f]')::int AS non_ascii,
             count(*) FILTER (WHERE full_name ~ '[\\u4e00-\\u9fff\\uac00-\\ud7af\\u3040-\\u30ff]')::int AS cjk,
             count(*) FILTER (WHERE full_name LIKE '%''%')::int AS apostrophe,
             count(DISTINCT plan)::int AS plans,
             count(*) FILTER (WHERE pin_algo = 'synthetic' AND length(pin_hash) = 32 AND length(pin_salt) = 16)::int AS pins,
             count(DISTINCT pin_salt)::int AS salts,
             count(DISTINCT account_number)::int AS numbers
      FROM accounts`);
    const r = rows[0];
    // Every well-formed NANP number is in the 555 exchange (the rest are the "invalid text" dirt).
    expect(r.fictional).toBe(first.phone.mobile + first.phone.landline + first.phone.voip + first.phone.unknownType);
    expect(r.non_ascii).toBeGreaterThan(N * 0.3);
    expectShare(r.cjk, 0.08, 0.01);
    expect(r.apostrophe).toBeGreaterThan(N * 0.02);
    expect(r.plans).toBe(4);
    expect(r).toMatchObject({ pins: N, salts: N, numbers: N });
  });

  it('continues ids after the existing maximum, and is deterministic for a seed', async () => {
    const before = await digest();
    const more = await seedAccounts(t.db, { count: 1_000, seed: 42 });
    expect(more).toMatchObject({ firstId: N + 1, lastId: N + 1_000, count: 1_000 });

    const again = await seedAccounts(t.db, { count: N, seed: 42, truncate: true });
    expect(again).toMatchObject({ truncated: N + 1_000, firstId: 1, lastId: N });
    expect({ ...again, durationMs: 0, truncated: 0 }).toEqual({ ...first, durationMs: 0 });
    expect(await digest()).toBe(before);

    const other = await seedAccounts(t.db, { count: N, seed: 43, truncate: true });
    expect(await digest()).not.toBe(before);
    expect(other.phone.mobile).not.toBe(first.phone.mobile);
  });

  it('rejects a bad count or seed before touching the database', async () => {
    await expect(seedAccounts(t.db, { count: 0 })).rejects.toThrow(/count/);
    await expect(seedAccounts(t.db, { count: 10, seed: -1 })).rejects.toThrow(/seed/);
    await expect(seedAccounts(t.db, { count: 1.5 })).rejects.toThrow(/count/);
  });
});
