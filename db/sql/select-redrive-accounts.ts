// The cohort of a redrive: accounts whose notification failed in a run. Accounts notified since
// by a later run, or waiting in a later run that is still going, are left out (and counted), so a
// second redrive of the same run does not message anyone twice. A failed row whose earlier attempt
// was ambiguous (it may have been delivered) is never sent again: it is counted, not redriven.
import type { Sql } from '../pool';

export async function selectRedriveAccounts(
  db: Sql,
  sourceRunId: string,
): Promise<{ accountIds: number[]; handledSince: number; maybeDelivered: number }> {
  const res = await db.query<{ account_id: number; handled_since: boolean; ever_ambiguous: boolean }>(
    `SELECT l.account_id, l.ever_ambiguous,
            EXISTS (
              SELECT 1 FROM runs r JOIN ledger o ON o.run_id = r.id AND o.account_id = l.account_id
              WHERE r.id <> src.id AND r.created_at >= src.created_at
                AND (o.notify_state = 'sent'
                     OR (o.notify_state IN ('pending', 'sending') AND o.reset_state <> 'skipped'
                         AND r.status IN ('created', 'running', 'paused')))
            ) AS handled_since
     FROM runs src JOIN ledger l ON l.run_id = src.id
     WHERE src.id = $1 AND l.notify_state = 'failed'
     ORDER BY l.account_id`,
    [sourceRunId],
  );
  const maybeDelivered = res.rows.filter((r) => r.ever_ambiguous).length;
  const accountIds = res.rows.filter((r) => !r.handled_since && !r.ever_ambiguous).map((r) => r.account_id);
  return { accountIds, handledSince: res.rows.length - accountIds.length - maybeDelivered, maybeDelivered };
}
