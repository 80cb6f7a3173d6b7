import type { Db } from '../pool';
import { RATE_WINDOW_S, type LiveReading } from '../../domain/live-progress';

/**
 * One reading of a run's ledger: outcome counts (as pinreset_counts), accounts in flight, messages
 * sent in the last minute, the latest provider call, and the top error codes. Two scans of the
 * run's rows on its primary key; the times are the database's, so every worker agrees.
 */
export async function readLiveProgress(db: Db, runId: string, topErrors = 5): Promise<LiveReading> {
  const res = await db.query(
    `SELECT count(*)::integer AS planned,
            count(*) FILTER (WHERE reset_state = 'reset')::integer AS reset,
            count(*) FILTER (WHERE reset_state = 'skipped')::integer AS skipped,
            count(*) FILTER (WHERE notify_state = 'sent' AND channel = 'sms')::integer AS sent_sms,
            count(*) FILTER (WHERE notify_state = 'sent' AND channel = 'email')::integer AS sent_email,
            count(*) FILTER (WHERE notify_state = 'sent' AND fell_back)::integer AS fell_back,
            count(*) FILTER (WHERE notify_state = 'unreachable')::integer AS unreachable,
            count(*) FILTER (WHERE notify_state = 'failed')::integer AS failed,
            count(*) FILTER (WHERE notify_state = 'skipped' AND reset_state = 'reset')::integer AS notify_skipped,
            count(*) FILTER (WHERE notify_state IN ('pending', 'sending') AND reset_state <> 'skipped')::integer AS pending,
            count(*) FILTER (WHERE notify_state = 'sending')::integer AS in_flight,
            count(*) FILTER (WHERE notified_at > t.now - make_interval(secs => $2))::integer AS sent_in_window,
            extract(epoch FROM min(notified_at)) * 1000 AS first_sent_ms,
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
    counts: {
      planned: r.planned, reset: r.reset, skipped: r.skipped, sentSms: r.sent_sms, sentEmail: r.sent_email, fellBack: r.fell_back,
      unreachable: r.unreachable, failed: r.failed, notifySkipped: r.notify_skipped, pending: r.pending,
    },
    inFlight: r.in_flight,
    sentInWindow: r.sent_in_window,
    windowS: Math.round(windowS * 10) / 10,
    lastActivityAtMs: r.last_activity_ms === null ? undefined : Math.round(Number(r.last_activity_ms)),
    readAtMs: Math.round(readAtMs),
    topErrors: errors.rows,
  };
}
