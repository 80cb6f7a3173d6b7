import type { Sql } from '../pool';

/** Changes the run's notification ceiling (Infinity = unlimited); every worker sees it at its next slot. */
export async function setSendRate(db: Sql, runId: string, ratePerSecond: number): Promise<void> {
  // Restart the schedule from now so a raised rate is not held back by slots reserved at the old one.
  await db.query('UPDATE runs SET rate_per_second = $2, rate_tat = least(rate_tat, clock_timestamp()) WHERE id = $1', [
    runId,
    ratePerSecond,
  ]);
}
