import type { Sql } from '../pool';

export interface PastDeadlineRow {
  accountId: number;
  messageSid: string;
  ref: string | null;
}

/**
 * SMS still without a final receipt `deadlineSeconds` after sending (what would become 'unknown'),
 * that have a SID to ask Twilio about; at most `limit`, oldest account ids first.
 */
export async function deliveriesPastDeadline(
  db: Sql,
  runId: string,
  deadlineSeconds: number,
  limit: number,
): Promise<PastDeadlineRow[]> {
  const res = await db.query<PastDeadlineRow>(
    `SELECT account_id::int AS "accountId", provider_message_id AS "messageSid", ref
     FROM ledger
     WHERE run_id = $1 AND channel = 'sms' AND notify_state = 'sent' AND provider_message_id IS NOT NULL
       AND (delivery_state IS NULL OR delivery_state IN ('accepted', 'sent'))
       AND coalesce(delivery_updated_at, notified_at) < clock_timestamp() - make_interval(secs => $2)
     ORDER BY account_id LIMIT $3`,
    [runId, deadlineSeconds, limit],
  );
  return res.rows;
}
