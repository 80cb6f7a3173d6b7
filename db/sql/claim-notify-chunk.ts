import type { Sql } from '../pool';

export interface ClaimedRow {
  accountId: number;
  /** Claimed by an earlier attempt that never recorded an outcome: reconcile before resending. */
  wasSending: boolean;
  attemptStartedAt: Date;
  attempts: number;
  status: string | null;
  phone: string | null;
  phoneType: string | null;
  smsOptOut: boolean;
  email: string | null;
  emailOptOut: boolean;
}

/** Claims up to `limit` unsettled accounts of a batch after `after` (ids in (after, last]). */
export async function claimNotifyChunk(
  db: Sql,
  runId: string,
  after: number,
  last: number,
  limit: number,
): Promise<ClaimedRow[]> {
  const res = await db.query('SELECT * FROM pinreset_claim_notify_chunk($1, $2, $3, $4)', [runId, after, last, limit]);
  return res.rows.map((r) => ({
    accountId: r.account_id,
    wasSending: r.was_sending,
    attemptStartedAt: r.attempt_started_at,
    attempts: r.attempts,
    status: r.status,
    phone: r.phone,
    phoneType: r.phone_type,
    smsOptOut: r.sms_opt_out ?? false,
    email: r.email,
    emailOptOut: r.email_opt_out ?? false,
  }));
}
