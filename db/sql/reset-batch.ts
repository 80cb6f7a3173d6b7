import type { Db } from '../pool';
import { inTransaction } from '../pool';

/** Invalidates the PINs of one batch in one transaction; returns what this call changed. */
export async function resetBatch(
  db: Db,
  runId: string,
  first: number,
  last: number,
  reason: string,
): Promise<{ reset: number; skipped: number }> {
  return inTransaction(db, async (client) => {
    const res = await client.query<{ reset: number; skipped: number }>(
      'SELECT reset, skipped FROM pinreset_reset_batch($1, $2, $3, $4)',
      [runId, first, last, reason],
    );
    return res.rows[0];
  });
}
