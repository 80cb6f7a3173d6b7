import type { Sql } from '../pool';
import type { StatusCallback } from '../../domain/delivery';

/**
 * Upserts status callbacks into sms_receipts in one statement, each moving only up the rank.
 * Returns the SIDs whose receipt changed (repeats and late lower-ranked callbacks change nothing).
 */
export async function recordStatusCallbacks(db: Sql, callbacks: StatusCallback[]): Promise<Set<string>> {
  if (callbacks.length === 0) return new Set();
  const res = await db.query<{ sid: string }>(
    'SELECT pinreset_record_status_callbacks($1, $2, $3, $4, $5, $6) AS sid',
    [
      callbacks.map((c) => c.messageSid),
      callbacks.map((c) => c.runId),
      callbacks.map((c) => c.ref),
      callbacks.map((c) => c.status),
      callbacks.map((c) => c.rank),
      callbacks.map((c) => c.errorCode),
    ],
  );
  return new Set(res.rows.map((r) => r.sid));
}
