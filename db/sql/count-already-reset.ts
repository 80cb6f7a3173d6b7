import type { Sql } from '../pool';

/** Accounts of the cohort (all when null) already reset by another run with the same reason. */
export async function countAlreadyReset(
  db: Sql,
  runId: string,
  reason: string,
  accountIds: number[] | null,
): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT pinreset_count_already_reset($1, $2, $3) AS n', [
    runId,
    reason,
    accountIds,
  ]);
  return res.rows[0].n;
}
