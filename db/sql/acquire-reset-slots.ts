import type { Sql } from '../pool';

/** Reserves n PIN resets under the run's database-protection ceiling; returns the wait in ms. */
export async function acquireResetSlots(db: Sql, runId: string, n: number): Promise<number> {
  const res = await db.query<{ wait_ms: number }>('SELECT pinreset_acquire_reset_slots($1, $2) AS wait_ms', [runId, n]);
  return res.rows[0]?.wait_ms ?? 0;
}
