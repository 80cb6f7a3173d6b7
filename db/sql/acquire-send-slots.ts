import type { Db } from '../pool';

/** Reserves n send slots under the run's global rate; returns the wait before using them. */
export async function acquireSendSlots(db: Db, runId: string, n: number): Promise<{ waitMs: number; rate: number }> {
  const res = await db.query<{ wait_ms: number; rate: number }>('SELECT wait_ms, rate FROM pinreset_acquire_send_slots($1, $2)', [runId, n]);
  if (res.rowCount === 0) throw new Error(`unknown run ${runId}`);
  return { waitMs: res.rows[0].wait_ms, rate: res.rows[0].rate };
}
