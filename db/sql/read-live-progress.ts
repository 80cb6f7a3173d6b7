import type { Sql } from '../pool';
import { RATE_WINDOW_S, type ErrorCount, type LiveReading } from '../../domain/live-progress';
import type { DeliveryCounts } from '../../domain/delivery';
import { countsOfRow } from './read-counts';
import { deliveryCountsOfRow } from './read-delivery-counts';

/**
 * One reading of a run's ledger in one pass over its rows (pinreset_ledger_reading): outcome
 * counts, accounts in flight, messages sent in the last minute, when sending began, the latest
 * provider call, the top error codes and the delivery counts. The times are the database's, so
 * every worker agrees.
 */
export async function readLedgerReading(
  db: Sql,
  runId: string,
  topErrors = 5,
): Promise<{ live: LiveReading; delivery: DeliveryCounts }> {
  const res = await db.query('SELECT * FROM pinreset_ledger_reading($1, $2, $3)', [runId, RATE_WINDOW_S, topErrors]);
  const r = res.rows[0];
  const readAtMs = Number(r.read_ms);
  const firstSent = r.first_sent_ms === null ? undefined : Number(r.first_sent_ms);
  const windowS = firstSent === undefined ? 0 : Math.min(RATE_WINDOW_S, Math.max(0, (readAtMs - firstSent) / 1000));
  const live: LiveReading = {
    counts: countsOfRow(r),
    inFlight: r.in_flight,
    sentInWindow: r.sent_in_window,
    windowS: Math.round(windowS * 10) / 10,
    lastActivityAtMs: r.last_activity_ms === null ? undefined : Math.round(Number(r.last_activity_ms)),
    readAtMs: Math.round(readAtMs),
    topErrors: r.top_errors as ErrorCount[],
  };
  return { live, delivery: deliveryCountsOfRow(r, 'd_') };
}

/** The live part of one reading (see readLedgerReading). */
export async function readLiveProgress(db: Sql, runId: string, topErrors = 5): Promise<LiveReading> {
  return (await readLedgerReading(db, runId, topErrors)).live;
}
