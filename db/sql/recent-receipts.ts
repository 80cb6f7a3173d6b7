import type { Sql } from '../pool';

/** Final receipts of a run since `from` (the last `window` of them): how many, how many filtered, and 30001s. */
export async function recentReceipts(
  db: Sql,
  runId: string,
  from: Date,
  window: number,
): Promise<{ finals: number; filtered: number; queueOverflow: number }> {
  const res = await db.query('SELECT * FROM pinreset_recent_receipts($1, $2, $3)', [runId, from, window]);
  const r = res.rows[0];
  return { finals: r.finals, filtered: r.filtered, queueOverflow: r.queue_overflow };
}
