import type { Sql } from '../pool';

/** Cohort size of a run whose ledger is already filled; also stored on the run. */
export async function countCohort(db: Sql, runId: string): Promise<number> {
  const res = await db.query<{ n: number }>(
    `UPDATE runs SET planned = (SELECT count(*) FROM ledger WHERE run_id = $1) WHERE id = $1 RETURNING planned AS n`,
    [runId],
  );
  if (res.rowCount === 0) throw new Error(`unknown run ${runId}`);
  return res.rows[0].n;
}
