import type { Sql } from '../pool';
import { RATE_WINDOW_S, type LiveReading } from '../../domain/live-progress';
import { readCounts } from './read-counts';

/**
 * One reading of a run's ledger: outcome counts (pinreset_counts, the one definition), accounts in
 * flight, messages sent in the last minute, when sending began, the latest provider call, and the
 * top error codes. Three scans of the run's rows on its primary key; the times are the
 * database's, so every worker agrees.
 */
export async function readLiveProgress(db: Sql, runId: string, topErrors = 5): Promise<LiveReading> {
  const counts = await readCounts(db, runId);
  const res = await db.query(
    `SELECT count(*) FILTER (WHERE notify_state = 'sending')::integer AS in_flight,
            count(*) FILTER (WHERE notified_at > t.now - make_interval(secs => $2))::integer AS sent_in_window,
            -- sending began with the first claim (or, for older rows, the first send)
            extract(epoch FROM least(min(notified_at), min(attempt_started_at))) * 1000 AS first_sent_ms,
            extract(epoch FROM greatest(max(notified_at), max(attempt_started_at))) * 1000 AS last_activity_ms,
            extract(epoch FROM t.now) * 1000 AS read_ms
     FROM (SELECT clock_timestamp() AS now) t
     LEFT JOIN ledger ON run_id = $1
     GROUP BY t.now`,
    [runId, RATE_WINDOW_S],
  );
  const errors = await db.query<{ outcome: string; code: string; count: number }>(
    `SELECT notify_state AS outcome, error_code AS code, count(*)::integer AS count
     FROM ledger WHERE run_id = $1 AND error_code IS NOT NULL AND notify_state <> 'sending'
     GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT $2`,
    [runId, topErrors],
  );
  const r = res.rows[0];
  const readAtMs = Number(r.read_ms);
  const firstSent = r.first_sent_ms === null ? undefined : Number(r.first_sent_ms);
  const windowS = firstSent === undefined ? 0 : Math.min(RATE_WINDOW_S, Math.max(0, (readAtMs - firstSent) / 1000));
  return {
    counts,
    inFlight: r.in_flight,
    sentInWindow: r.sent_in_window,
    windowS: Math.round(windowS * 10) / 10,
    lastActivityAtMs: r.last_activity_ms === null ? undefined : Math.round(Number(r.last_activity_ms)),
    readAtMs: Math.round(readAtMs),
    topErrors: errors.rows,
  };
}
