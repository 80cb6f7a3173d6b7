import type { Db } from '../pool';
import type { StatusCallback } from '../../domain/delivery';

/**
 * Upserts status callbacks into sms_receipts in one statement, each moving only up the rank.
 * Returns how many receipts changed (repeats and late lower-ranked callbacks change nothing).
 */
export async function recordStatusCallbacks(db: Db, callbacks: StatusCallback[]): Promise<number> {
  if (callbacks.length === 0) return 0;
  const res = await db.query<{ n: number }>('SELECT pinreset_record_status_callbacks($1, $2, $3, $4, $5, $6) AS n', [
    callbacks.map((c) => c.messageSid),
    callbacks.map((c) => c.runId),
    callbacks.map((c) => c.ref),
    callbacks.map((c) => c.status),
    callbacks.map((c) => c.rank),
    callbacks.map((c) => c.errorCode),
  ]);
  return res.rows[0].n;
}
