import type { Sql } from '../pool';

/** Stamps when the last PIN of the run was invalidated; returns the exposure window in ms. */
export async function markResetsDone(db: Sql, runId: string): Promise<number> {
  const res = await db.query<{ window_ms: number }>(
    `UPDATE runs SET resets_done_at = COALESCE((SELECT max(reset_at) FROM ledger WHERE run_id = $1), now())
     WHERE id = $1
     RETURNING extract(epoch FROM (resets_done_at - started_at)) * 1000 AS window_ms`,
    [runId],
  );
  return Math.round(res.rows[0]?.window_ms ?? 0);
}
