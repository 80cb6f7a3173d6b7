import type { Sql } from '../pool';
import type { RunStatus } from '../../domain/run';

/** Moves a run to a status; started_at and finished_at are stamped once. */
export async function setRunStatus(db: Sql, runId: string, status: RunStatus, reason?: string): Promise<void> {
  await db.query(
    `UPDATE runs SET status = $2, status_reason = $3,
       started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
       finished_at = CASE WHEN $2 IN ('completed', 'cancelled', 'failed') THEN COALESCE(finished_at, now())
                        WHEN $2 = 'running' THEN NULL ELSE finished_at END
     WHERE id = $1`,
    [runId, status, reason ?? null],
  );
}
