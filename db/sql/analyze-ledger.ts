import type { Sql } from '../pool';

/**
 * Refreshes the ledger's planner statistics (migration 014) once a run's cohort is in it; false
 * when another maintenance held the table for 10 s (the run goes on with the statistics it has).
 */
export async function analyzeLedger(db: Sql): Promise<boolean> {
  const res = await db.query<{ ok: boolean }>('SELECT pinreset_analyze_ledger() AS ok');
  return res.rows[0].ok;
}
