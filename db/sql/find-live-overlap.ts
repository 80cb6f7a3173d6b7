import type { Sql } from '../pool';

/** The first unfinished run (other than `runId`) holding any of the accounts (all open accounts when null). */
export async function findLiveOverlap(
  db: Sql,
  runId: string,
  accountIds: number[] | null,
): Promise<{ runId: string; status: string } | undefined> {
  const res = await db.query('SELECT * FROM pinreset_find_live_overlap($1, $2)', [runId, accountIds]);
  const r = res.rows[0];
  return r ? { runId: r.run_id, status: r.status } : undefined;
}
