import type { Sql } from '../pool';

/** Adds explicit account ids (a forensic cohort file or a redrive) to a run's ledger. */
export async function addCohortAccounts(db: Sql, runId: string, accountIds: number[]): Promise<number> {
  const res = await db.query(
    `INSERT INTO ledger (run_id, account_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING`,
    [runId, accountIds],
  );
  return res.rowCount ?? 0;
}
