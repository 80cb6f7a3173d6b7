import type { Sql } from '../pool';
import type { PlannedBatch } from '../../domain/types';

export type { PlannedBatch };

/** The next batches of the run's cohort after `after`, by keyset over account ids. */
export async function planBatches(
  db: Sql,
  runId: string,
  after: number,
  batchSize: number,
  max: number,
): Promise<PlannedBatch[]> {
  const res = await db.query<{ first_id: number; last_id: number; size: number }>(
    'SELECT first_id, last_id, size FROM pinreset_plan_batches($1, $2, $3, $4)',
    [runId, after, batchSize, max],
  );
  return res.rows.map((r) => ({ first: r.first_id, last: r.last_id, size: r.size }));
}
