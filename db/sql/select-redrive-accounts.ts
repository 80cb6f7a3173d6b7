// The cohort of a redrive: accounts whose notification failed in a run. Accounts notified since
// by a later run, or waiting in a later run that is still going, are left out (and counted), so a
// second redrive of the same run does not message anyone twice.
import type { Db } from '../pool';

export async function selectRedriveAccounts(db: Db, sourceRunId: string): Promise<{ accountIds: number[]; handledSince: number }> {
  const res = await db.query<{ account_id: number; handled_since: boolean }>(
    `SELECT l.account_id,
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
  const accountIds = res.rows.filter((r) => !r.handled_since).map((r) => r.account_id);
  return { accountIds, handledSince: res.rows.length - accountIds.length };
}
