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
  return deliveryCountsOfRow(res.rows[0]);
}

/** The columns of pinreset_delivery_counts (or pinreset_ledger_reading's, after `prefix`), as DeliveryCounts. */
export function deliveryCountsOfRow(r: Record<string, unknown>, prefix = ''): DeliveryCounts {
  const n = (k: string) => r[prefix + k] as number;
  return {
    accepted: n('accepted'),
    sent: n('sent'),
    delivered: n('delivered'),
    undelivered: n('undelivered'),
    failed: n('failed'),
    unknown: n('unknown'),
    byCode: (r[prefix + 'by_code'] as Record<string, number> | null) ?? {},
    fellBackAfterReceipt: n('fell_back_after_receipt'),
    retried: n('retried'),
  };
}
