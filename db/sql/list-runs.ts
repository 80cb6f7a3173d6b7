import type { Sql } from '../pool';
import type { Counts } from '../../domain/types';

export interface RunListRow {
  id: string;
  status: string;
  statusReason: string | null;
  cohortKind: string;
  reason: string;
  operator: string;
  planned: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The run's latest checkpoint, if it wrote one. */
  phase: string | null;
  counts: Counts | null;
  checkpointAt: Date | null;
  /** A redrive's source run. */
  sourceRunId: string | null;
}

/** The most recent runs, newest first, each with the counts of its latest checkpoint. */
export async function listRuns(db: Sql, limit: number): Promise<RunListRow[]> {
  const res = await db.query(
    `SELECT r.id, r.status, r.status_reason, r.cohort_kind, r.reason, r.operator, r.planned, r.created_at, r.started_at, r.finished_at, r.source_run_id,
            c.phase, c.counts, c.created_at AS checkpoint_at
     FROM runs r
     LEFT JOIN LATERAL (SELECT phase, counts, created_at FROM checkpoints WHERE run_id = r.id ORDER BY seq DESC LIMIT 1) c ON true
     ORDER BY r.created_at DESC, r.id DESC
     LIMIT $1`,
    [limit],
  );
  return res.rows.map((r) => ({
    id: r.id,
    status: r.status,
    statusReason: r.status_reason,
    cohortKind: r.cohort_kind,
    reason: r.reason,
    operator: r.operator,
    planned: r.planned,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    phase: r.phase,
    counts: r.counts,
    checkpointAt: r.checkpoint_at,
    sourceRunId: r.source_run_id,
  }));
}
