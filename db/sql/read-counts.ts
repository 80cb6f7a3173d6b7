import type { Sql } from '../pool';
import type { Counts } from '../../domain/types';

/** Outcome counts from the ledger: of the whole run, or of one batch range. */
export async function readCounts(db: Sql, runId: string, range?: { first: number; last: number }): Promise<Counts> {
  const res = await db.query('SELECT * FROM pinreset_counts($1, $2, $3)', [
    runId,
    range?.first ?? null,
    range?.last ?? null,
  ]);
  return countsOfRow(res.rows[0]);
}

/** The counts columns of pinreset_counts / pinreset_ledger_reading, as Counts. */
export function countsOfRow(r: Record<string, number>): Counts {
  return {
    planned: r.planned,
    reset: r.reset,
    skipped: r.skipped,
    sentSms: r.sent_sms,
    sentEmail: r.sent_email,
    fellBack: r.fell_back,
    unreachable: r.unreachable,
    failed: r.failed,
    notifySkipped: r.notify_skipped,
    pending: r.pending,
    ambiguous: r.ambiguous ?? 0,
  };
}
