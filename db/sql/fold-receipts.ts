import type { Sql } from '../pool';

/** Folds the run's new receipts (SMS callbacks, email bounces) into its ledger rows; returns rows changed. */
export async function foldReceipts(db: Sql, runId: string): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT pinreset_fold_receipts($1) AS n', [runId]);
  return res.rows[0].n;
}
