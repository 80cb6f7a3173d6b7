import type { Sql } from '../pool';
import type { ControlStatus } from '../../domain/run';

export type { ControlStatus };

/** Notified (payload: the run id) in the same statement as the write, so workers hear of a stop at once. */
export const RUN_CONTROL_CHANNEL = 'pinreset_run_control';

/**
 * Records a pause, resume or cancel on the run at once, for every worker's send path to see
 * (readRunStop). Ordered by `seq` (the workflow's control counter): a late, older write changes
 * nothing; a finished run is never reopened. Returns whether the row changed.
 */
export async function recordRunControl(
  db: Sql,
  runId: string,
  seq: number,
  status: ControlStatus,
  reason?: string,
): Promise<boolean> {
  // The notification is delivered on commit, when a renewal already reads the new status.
  const res = await db.query(
    `WITH changed AS (
       UPDATE runs SET status = $3, status_reason = $4, control_seq = $2,
         stop_requested_at = CASE WHEN $3 = 'running' THEN NULL ELSE clock_timestamp() END,
         started_at = COALESCE(started_at, now())
       WHERE id = $1 AND control_seq < $2 AND status NOT IN ('completed', 'cancelled', 'failed')
       RETURNING id)
     SELECT pg_notify('${RUN_CONTROL_CHANNEL}', id::text) FROM changed`,
    [runId, seq, status, reason ?? null],
  );
  return res.rowCount === 1;
}

/** 'created' -> 'running' when the workflow starts; a pause recorded before that stays. */
export async function markRunStarted(db: Sql, runId: string): Promise<void> {
  await db.query(
    `UPDATE runs SET status = CASE WHEN status = 'created' THEN 'running' ELSE status END, started_at = COALESCE(started_at, now())
     WHERE id = $1`,
    [runId],
  );
}

/** Records who approved a canary, once; returns the approval in force. */
export async function recordApproval(
  db: Sql,
  runId: string,
  by: string,
): Promise<{ by: string; at: Date } | undefined> {
  const res = await db.query<{ approved_by: string; approved_at: Date }>(
    `UPDATE runs SET approved_by = COALESCE(approved_by, $2), approved_at = COALESCE(approved_at, now())
     WHERE id = $1 RETURNING approved_by, approved_at`,
    [runId, by],
  );
  const r = res.rows[0];
  return r ? { by: r.approved_by, at: r.approved_at } : undefined;
}
