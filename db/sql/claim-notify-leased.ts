import type { Sql } from '../pool';

/** A claimed account with what its notification needs. Contact data stays inside the activity. */
export interface ClaimedRow {
  accountId: number;
  /** The row's reference: rides in the message text and the callback URL. */
  ref: string;
  attempts: number;
  fellBack: boolean;
  status: string | null;
  phone: string | null;
  phoneType: string | null;
  smsOptOut: boolean;
  email: string | null;
  emailOptOut: boolean;
}

export interface LeasedClaim {
  rows: ClaimedRow[];
  /** The lease's end by the database clock (undefined when nothing was claimed). */
  leaseUntil?: Date;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row: its columns are named by the SQL function above
export function toClaimedRow(r: Record<string, any>): ClaimedRow {
  return {
    accountId: r.account_id,
    ref: r.ref,
    attempts: r.attempts,
    fellBack: r.fell_back,
    status: r.status,
    phone: r.phone,
    phoneType: r.phone_type,
    smsOptOut: r.sms_opt_out ?? false,
    email: r.email,
    emailOptOut: r.email_opt_out ?? false,
  };
}

/** Claims up to `limit` pending accounts of a batch after `after` (ids in (after, last]) under a token and a lease. */
export async function claimNotifyLeased(
  db: Sql,
  runId: string,
  after: number,
  last: number,
  limit: number,
  token: string,
  leaseMs: number,
): Promise<LeasedClaim> {
  const res = await db.query('SELECT * FROM pinreset_claim_notify_leased($1, $2, $3, $4, $5, $6)', [
    runId,
    after,
    last,
    limit,
    token,
    leaseMs,
  ]);
  return { rows: res.rows.map(toClaimedRow), leaseUntil: res.rows[0]?.lease_until };
}
