import type { Sql } from '../pool';
import { rateToNumber, type RunParams } from '../../domain/run';

/** Records a new run. Returns false when a run with this id exists already (idempotent start). */
export async function createRun(
  db: Sql,
  run: { id: string; reason: string; operator: string; params: RunParams; sourceRunId?: string; message?: object },
): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO runs (id, reason, operator, cohort_kind, params, rate_per_second, reset_rate_per_second, source_run_id, message)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
    [
      run.id,
      run.reason,
      run.operator,
      run.params.cohort,
      JSON.stringify(run.params),
      rateToNumber(run.params.ratePerSecond),
      run.params.resetMaxPerSecond,
      run.sourceRunId ?? null,
      run.message ? JSON.stringify(run.message) : null,
    ],
  );
  return res.rowCount === 1;
}
