import type { Sql } from '../pool';
import type { Counts } from '../../domain/types';
import type { LiveReading } from '../../domain/live-progress';

export interface RunRow {
  id: string;
  reason: string;
  operator: string;
  cohortKind: string;
  params: Record<string, unknown>;
  /** The message parameters frozen at creation (db/migrations/007), or null for older runs. */
  message: Record<string, unknown> | null;
  status: string;
  statusReason: string | null;
  planned: number;
  ratePerSecond: number;
  createdAt: Date;
  startedAt: Date | null;
  resetsDoneAt: Date | null;
  finishedAt: Date | null;
  /** When the current pause or cancel was recorded (null while running). */
  stopRequestedAt: Date | null;
  approvedBy: string | null;
  approvedAt: Date | null;
  sourceRunId: string | null;
  lastCheckpoint: { seq: number; phase: string; counts: Counts; createdAt: Date; live: LiveReading | null } | null;
}

/** A run with its latest checkpoint, readable with no worker running. */
export async function readRun(db: Sql, runId: string): Promise<RunRow | undefined> {
  const res = await db.query(
    `SELECT r.*, c.seq AS c_seq, c.phase AS c_phase, c.counts AS c_counts, c.created_at AS c_created_at, c.live AS c_live
     FROM runs r
     LEFT JOIN LATERAL (SELECT * FROM checkpoints WHERE run_id = r.id ORDER BY seq DESC LIMIT 1) c ON true
     WHERE r.id = $1`,
    [runId],
  );
  const r = res.rows[0];
  if (!r) return undefined;
  return {
    id: r.id,
    reason: r.reason,
    operator: r.operator,
    cohortKind: r.cohort_kind,
    params: r.params,
    message: r.message ?? null,
    status: r.status,
    statusReason: r.status_reason,
    planned: r.planned,
    ratePerSecond: r.rate_per_second,
    createdAt: r.created_at,
    startedAt: r.started_at,
    resetsDoneAt: r.resets_done_at,
    finishedAt: r.finished_at,
    stopRequestedAt: r.stop_requested_at ?? null,
    approvedBy: r.approved_by ?? null,
    approvedAt: r.approved_at ?? null,
    sourceRunId: r.source_run_id ?? null,
    lastCheckpoint:
      r.c_seq === null
        ? null
        : { seq: r.c_seq, phase: r.c_phase, counts: r.c_counts, createdAt: r.c_created_at, live: r.c_live ?? null },
  };
}
