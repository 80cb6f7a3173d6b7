import type { Sql } from '../pool';

/**
 * The given SMS become 'unknown' if they still have no final receipt: Twilio was asked once and
 * had nothing final to say (pinreset_mark_unknown_deliveries does the whole run at once).
 */
export async function markUnknownChecked(db: Sql, runId: string, accountIds: number[]): Promise<number> {
  if (accountIds.length === 0) return 0;
  const res = await db.query(
    `UPDATE ledger SET delivery_state = 'unknown', delivery_updated_at = clock_timestamp()
     WHERE run_id = $1 AND account_id = ANY($2::bigint[]) AND channel = 'sms' AND notify_state = 'sent'
       AND (delivery_state IS NULL OR delivery_state IN ('accepted', 'sent'))`,
    [runId, accountIds],
  );
  return res.rowCount ?? 0;
}
