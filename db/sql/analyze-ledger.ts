import type { Db } from '../pool';

/**
 * Refreshes the ledger's planner statistics after a cohort was frozen: with stale statistics the
 * keyset batch planning is planned as a sort of the whole remaining cohort (seconds per page).
 */
export async function analyzeLedger(db: Db): Promise<void> {
  await db.query('ANALYZE ledger');
}
