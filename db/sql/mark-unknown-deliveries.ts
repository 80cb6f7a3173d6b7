import type { Sql } from '../pool';

/** SMS with no final receipt `deadlineSeconds` after sending become 'unknown'; returns how many. */
export async function markUnknownDeliveries(db: Sql, runId: string, deadlineSeconds: number): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT pinreset_mark_unknown_deliveries($1, $2) AS n', [
    runId,
    deadlineSeconds,
  ]);
  return res.rows[0].n;
}
