// Per-account outcomes of a run, one keyset window at a time, for the report. Ledger columns
// only: never a phone number, email address or name.
import type { Sql } from '../pool';

/**
 * An account's outcome in a run:
 *   sent            notified (channel says how)
 *   failed          the provider refused every channel tried (error_code says why)
 *   unreachable     no channel the policy allows can reach the customer (error_code says why)
 *   skipped         PIN not reset: account closed, deleted or unknown (error_code)
 *   notify_skipped  PIN reset, but the account was closed or deleted before its notification
 *   pending         not settled yet
 */
export const REPORT_OUTCOMES = [
  'sent',
  'failed',
  'unreachable',
  'skipped',
  'notify_skipped',
  'ambiguous',
  'pending',
] as const;
export type ReportOutcome = (typeof REPORT_OUTCOMES)[number];

const OUTCOME_SQL = `CASE
  WHEN l.reset_state = 'skipped' THEN 'skipped'
  WHEN l.notify_state = 'skipped' THEN 'notify_skipped'
  WHEN l.notify_state IN ('pending', 'sending') THEN 'pending'
  ELSE l.notify_state END`;

export interface ReportRow {
  accountId: number;
  outcome: ReportOutcome;
  channel: string | null;
  fellBack: boolean;
  providerMessageId: string | null;
  errorCode: string | null;
  resetAt: Date | null;
  notifiedAt: Date | null;
  attempts: number;
  /** How a parked (ambiguous) notification was settled: sid, callback, list, resend, held. */
  resolvedBy: string | null;
  /** What the delivery receipts say (issue 11): accepted, sent, delivered, undelivered, failed, unknown. */
  deliveryState: string | null;
  deliveryCode: string | null;
  deliveryAt: Date | null;
  /** What the run did about a bad outcome: fallback_email, sms_retried, unreachable, ... */
  deliveryAction: string | null;
}

/**
 * The run's rows in the window of `span` account ids starting at its first account after
 * `after`, in id order, optionally only some outcomes (the window may then hold none: carry on
 * from windowEnd). windowEnd is Infinity after the last account. A bounded id window rather than
 * `ORDER BY account_id LIMIT n`, whose plan degrades to a sort of the whole rest of the run while
 * the ledger's statistics are stale.
 */
export async function readReportPage(
  db: Sql,
  runId: string,
  after: number,
  span: number,
  outcomes?: readonly ReportOutcome[],
): Promise<{ rows: ReportRow[]; windowEnd: number }> {
  const start = await db.query<{ s: number | null }>(
    'SELECT min(account_id) AS s FROM ledger WHERE run_id = $1 AND account_id > $2',
    [runId, after],
  );
  const s = start.rows[0].s;
  if (s === null) return { rows: [], windowEnd: Number.POSITIVE_INFINITY };
  const res = await db.query(
    `SELECT * FROM (
       SELECT l.account_id, ${OUTCOME_SQL} AS outcome, l.channel, l.fell_back, l.provider_message_id, l.error_code,
              l.reset_at, l.notified_at, l.attempts, l.resolved_by,
              l.delivery_state, l.delivery_code,
              coalesce(l.delivery_final_at, l.delivery_updated_at) AS delivery_at, l.delivery_action
       FROM ledger l
       WHERE l.run_id = $1 AND l.account_id >= $2 AND l.account_id < $2 + $3::bigint
     ) r
     WHERE $4::text[] IS NULL OR r.outcome = ANY($4::text[])
     ORDER BY r.account_id`,
    [runId, s, span, outcomes ? [...outcomes] : null],
  );
  return {
    windowEnd: s + span - 1,
    rows: res.rows.map((r) => ({
      accountId: r.account_id,
      outcome: r.outcome,
      channel: r.channel,
      fellBack: r.fell_back,
      providerMessageId: r.provider_message_id,
      errorCode: r.error_code,
      resetAt: r.reset_at,
      notifiedAt: r.notified_at,
      attempts: r.attempts,
      resolvedBy: r.resolved_by,
      deliveryState: r.delivery_state,
      deliveryCode: r.delivery_code,
      deliveryAt: r.delivery_at,
      deliveryAction: r.delivery_action,
    })),
  };
}
