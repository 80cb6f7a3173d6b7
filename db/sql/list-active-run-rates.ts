import type { Sql } from '../pool';

export interface ActiveRunRate {
  id: string;
  status: string;
  /** Configured messages/s for all workers together; Infinity = unlimited. */
  rate: number;
}

/** The configured notification rate of each running, paused or cancelling run (for the worker's metrics). */
export async function listActiveRunRates(db: Sql, limit = 100): Promise<ActiveRunRate[]> {
  const res = await db.query<ActiveRunRate>(
    `SELECT id, status, rate_per_second AS rate FROM runs WHERE status IN ('running', 'paused', 'cancelling') ORDER BY id LIMIT $1`,
    [limit],
  );
  return res.rows.map((r) => ({ id: r.id, status: r.status, rate: Number(r.rate) }));
}
