import type { Sql } from '../pool';

/** Run statuses in which no provider call may start. */
export const STOP_STATUSES = ['paused', 'cancelling', 'cancelled', 'completed', 'failed'] as const;

export interface RunStop {
  /** True when sending must stop now: the run is paused, being cancelled, or over (or unknown). */
  stop: boolean;
  /** runs.status, or 'unknown' when there is no such run. */
  status: string;
  /** Why (the pause or cancel reason), when the run has one. */
  reason: string | null;
}

/**
 * Whether the send path must stop for this run: one primary-key read of `runs`, cheap enough to
 * call before every provider call or at least every second. The workflow writes 'paused' /
 * 'cancelling' here the moment a pause or cancel signal arrives (db/sql/record-run-control.ts).
 */
export async function readRunStop(db: Sql, runId: string): Promise<RunStop> {
  const res = await db.query<{ status: string; status_reason: string | null }>(
    'SELECT status, status_reason FROM runs WHERE id = $1',
    [runId],
  );
  const row = res.rows[0];
  if (!row) return { stop: true, status: 'unknown', reason: null };
  return {
    stop: (STOP_STATUSES as readonly string[]).includes(row.status),
    status: row.status,
    reason: row.status_reason,
  };
}
