// Builds small, exact cohorts for tests. Synthetic data only; numbers are in the 555 exchange.
import type { Db } from '../../db/pool';

export interface AccountSpec {
  id: number;
  phone?: string | null;
  phoneType?: 'mobile' | 'landline' | 'voip' | 'unknown' | null;
  email?: string | null;
  status?: 'active' | 'suspended' | 'closed' | 'deleted';
  smsOptOut?: boolean;
  emailOptOut?: boolean;
  name?: string;
}

export function phoneFor(id: number): string {
  return `+1415555${String(id % 10000).padStart(4, '0')}`;
}

export function emailFor(id: number): string {
  return `customer${id}@mail.example`;
}

/** A mobile customer with an email, unless the spec says otherwise. */
export function account(id: number, spec: Partial<AccountSpec> = {}): AccountSpec {
  return { id, phone: phoneFor(id), phoneType: 'mobile', email: emailFor(id), ...spec };
}

/** Hands out fresh mobile accounts, n at a time, and returns their ids: each test runs over its own. */
export function accountSupply(db: () => Db): (n: number) => Promise<number[]> {
  let next = 1;
  return async (n) => {
    const ids = Array.from({ length: n }, (_, i) => next + i);
    next += n;
    await insertAccounts(
      db(),
      ids.map((id) => account(id)),
    );
    return ids;
  };
}

export async function insertAccounts(db: Db, specs: AccountSpec[]): Promise<void> {
  for (let i = 0; i < specs.length; i += 5000) {
    const chunk = specs.slice(i, i + 5000);
    await db.query(
      `INSERT INTO accounts (id, account_number, full_name, phone, phone_type, email, status, sms_opt_out, email_opt_out, pin_hash, pin_salt, pin_algo)
       SELECT id, 'AN' || id, name, phone, phone_type, email, status, sms_opt_out, email_opt_out, '\\x01'::bytea, '\\x02'::bytea, 'synthetic'
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::boolean[])
         AS t(id, name, phone, phone_type, email, status, sms_opt_out, email_opt_out)`,
      [
        chunk.map((s) => s.id),
        chunk.map((s) => s.name ?? `Customer ${s.id}`),
        chunk.map((s) => s.phone ?? null),
        chunk.map((s) => s.phoneType ?? null),
        chunk.map((s) => s.email ?? null),
        chunk.map((s) => s.status ?? 'active'),
        chunk.map((s) => s.smsOptOut ?? false),
        chunk.map((s) => s.emailOptOut ?? false),
      ],
    );
  }
}

export interface LedgerRow {
  account_id: number;
  reset_state: string;
  notify_state: string;
  channel: string | null;
  fell_back: boolean;
  error_code: string | null;
  provider_message_id: string | null;
  ref: string | null;
  credential_version: number | null;
  pin_status: string | null;
}

export async function ledgerOf(db: Db, runId: string): Promise<Map<number, LedgerRow>> {
  const res = await db.query<LedgerRow>(
    `SELECT l.account_id, l.reset_state, l.notify_state, l.channel, l.fell_back, l.error_code, l.provider_message_id, l.ref,
            a.credential_version, a.pin_status
     FROM ledger l LEFT JOIN accounts a ON a.id = l.account_id WHERE l.run_id = $1 ORDER BY l.account_id`,
    [runId],
  );
  return new Map(res.rows.map((r) => [r.account_id, r]));
}
