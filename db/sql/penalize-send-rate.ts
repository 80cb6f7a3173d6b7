import type { Db } from '../pool';

/** Provider throttling: pushes every worker's next send slot back by ms. */
export async function penalizeSendRate(db: Db, runId: string, ms: number): Promise<void> {
  await db.query('SELECT pinreset_penalize_send_rate($1, $2)', [runId, Math.round(ms)]);
}
