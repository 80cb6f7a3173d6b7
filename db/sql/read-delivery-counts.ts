import type { Sql } from '../pool';
import type { DeliveryCounts } from '../../domain/delivery';

/** Delivery counts of a run (or a range of its accounts) from the ledger. */
export async function readDeliveryCounts(
  db: Sql,
  runId: string,
  range?: { first: number; last: number },
): Promise<DeliveryCounts> {
  const res = await db.query('SELECT * FROM pinreset_delivery_counts($1, $2, $3)', [
    runId,
    range?.first ?? null,
    range?.last ?? null,
  ]);
  const r = res.rows[0];
  return {
    accepted: r.accepted,
    sent: r.sent,
    delivered: r.delivered,
    undelivered: r.undelivered,
    failed: r.failed,
    unknown: r.unknown,
    byCode: r.by_code ?? {},
    fellBackAfterReceipt: r.fell_back_after_receipt,
    retried: r.retried,
  };
}
