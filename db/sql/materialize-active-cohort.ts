import type { Sql } from '../pool';

/** Freezes all active accounts into the run's ledger (once). Returns the cohort size. */
export async function materializeActiveCohort(db: Sql, runId: string): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT pinreset_materialize_active_cohort($1) AS n', [runId]);
  return res.rows[0].n;
}
