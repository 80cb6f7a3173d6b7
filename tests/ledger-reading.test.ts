// One reading of a run's ledger (migration 016): every figure a checkpoint and `status` show,
// computed in one pass, and a batch's counts, checked against the same figures computed here
// from the rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/pool';
import { createRun } from '../db/sql/create-run';
import { readCounts } from '../db/sql/read-counts';
import { readDeliveryCounts } from '../db/sql/read-delivery-counts';
import { readLedgerReading } from '../db/sql/read-live-progress';
import { DEFAULT_PARAMS } from '../domain/run';
import { freshDatabase } from './support/harness';
import type { LedgerRow } from './support/accounts';

const RUN = 'reading-1';
const OTHER = 'reading-2';

type Row = Pick<LedgerRow, 'account_id' | 'reset_state' | 'notify_state' | 'channel' | 'fell_back' | 'error_code'> & {
  notified_s_ago: number | null;
  delivery_state: string | null;
  delivery_code: string | null;
  delivery_action: string | null;
};

/** Deterministic rows covering every state the counts tell apart. */
function rows(n: number): Row[] {
  let x = 7;
  const pick = <T>(xs: T[]): T => xs[Math.floor(((x = (x * 48271) % 2147483647) / 2147483647) * xs.length)];
  return Array.from({ length: n }, (_, i) => {
    const notify = pick([
      'pending',
      'sending',
      'ambiguous',
      'sent',
      'sent',
      'sent',
      'unreachable',
      'failed',
      'skipped',
    ]);
    const channel = notify === 'sent' || notify === 'failed' ? pick(['sms', 'sms', 'email']) : null;
    const delivery =
      channel === 'sms' && notify === 'sent'
        ? pick([null, 'accepted', 'sent', 'delivered', 'delivered', 'undelivered', 'failed', 'unknown'])
        : null;
    return {
      account_id: i + 1,
      reset_state: pick(['pending', 'reset', 'reset', 'skipped']),
      notify_state: notify,
      channel,
      fell_back: channel === 'email' && pick([true, false]),
      error_code:
        notify === 'sending' || notify === 'pending'
          ? pick([null, 'ETIMEDOUT'])
          : pick([null, null, '21211', '21610', 'ETIMEDOUT']),
      notified_s_ago: notify === 'sent' ? pick([5, 30, 90, 600]) : null,
      delivery_state: delivery,
      delivery_code:
        delivery === 'undelivered' || delivery === 'failed' ? pick(['30003', '30005', '30007', null]) : null,
      delivery_action:
        delivery === 'undelivered'
          ? pick([null, 'fallback_email', 'sms_retried', 'retry_sms_sending', 'unreachable'])
          : null,
    };
  });
}

/** The figures as the pre-016 queries defined them, from the rows themselves. */
function expected(rs: Row[]) {
  const c = (f: (r: Row) => boolean) => rs.filter(f).length;
  const sent = (r: Row) => r.notify_state === 'sent';
  const errors = new Map<string, number>();
  for (const r of rs) {
    if (r.error_code === null || r.notify_state === 'sending') continue;
    const k = `${r.notify_state} ${r.error_code}`;
    errors.set(k, (errors.get(k) ?? 0) + 1);
  }
  const byCode: Record<string, number> = {};
  for (const r of rs) {
    if ((r.delivery_state === 'undelivered' || r.delivery_state === 'failed') && r.delivery_code) {
      byCode[r.delivery_code] = (byCode[r.delivery_code] ?? 0) + 1;
    }
  }
  const delivered = (s: string) => c((r) => r.delivery_state === s);
  return {
    counts: {
      planned: rs.length,
      reset: c((r) => r.reset_state === 'reset'),
      skipped: c((r) => r.reset_state === 'skipped'),
      sentSms: c((r) => sent(r) && r.channel === 'sms'),
      sentEmail: c((r) => sent(r) && r.channel === 'email'),
      fellBack: c((r) => sent(r) && r.fell_back),
      unreachable: c((r) => r.notify_state === 'unreachable'),
      failed: c((r) => r.notify_state === 'failed'),
      notifySkipped: c((r) => r.notify_state === 'skipped' && r.reset_state === 'reset'),
      pending: c((r) => ['pending', 'sending'].includes(r.notify_state) && r.reset_state !== 'skipped'),
      ambiguous: c((r) => r.notify_state === 'ambiguous'),
    },
    inFlight: c((r) => r.notify_state === 'sending'),
    sentInWindow: c((r) => r.notified_s_ago !== null && r.notified_s_ago < 60),
    topErrors: [...errors]
      .map(([k, count]) => ({ outcome: k.split(' ')[0], code: k.split(' ')[1], count }))
      .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0))
      .slice(0, 5),
    delivery: {
      accepted: delivered('accepted'),
      sent: delivered('sent'),
      delivered: delivered('delivered'),
      undelivered: delivered('undelivered'),
      failed: delivered('failed'),
      unknown: delivered('unknown'),
      byCode,
      fellBackAfterReceipt: c((r) => r.delivery_state !== null && r.delivery_action === 'fallback_email'),
      retried: c(
        (r) => r.delivery_state !== null && ['sms_retried', 'retry_sms_sending'].includes(r.delivery_action ?? ''),
      ),
    },
  };
}

describe('pinreset_ledger_reading', () => {
  let db: Db;
  const all = rows(400);

  beforeAll(async () => {
    ({ db } = await freshDatabase('reading'));
    for (const id of [RUN, OTHER]) {
      await createRun(db, { id, reason: 'INC', operator: 't', params: { ...DEFAULT_PARAMS, cohort: 'file' } });
    }
    for (const [run, rs] of [
      [RUN, all],
      [OTHER, rows(50)],
    ] as const) {
      await db.query(
        `INSERT INTO ledger (run_id, account_id, reset_state, notify_state, channel, fell_back, error_code, notified_at,
                             delivery_state, delivery_code, delivery_action)
         SELECT $1, r.account_id, r.reset_state, r.notify_state, r.channel, r.fell_back, r.error_code,
                clock_timestamp() - make_interval(secs => r.notified_s_ago), r.delivery_state, r.delivery_code, r.delivery_action
         FROM jsonb_to_recordset($2::jsonb) AS r(account_id bigint, reset_state text, notify_state text, channel text,
              fell_back boolean, error_code text, notified_s_ago double precision, delivery_state text,
              delivery_code text, delivery_action text)`,
        [run, JSON.stringify(rs)],
      );
    }
  });

  afterAll(async () => {
    await db?.end();
  });

  it('gives every figure of the run in one reading, as the rows say (another run beside it changes nothing)', async () => {
    const { live, delivery } = await readLedgerReading(db, RUN);
    const want = expected(all);
    expect(live.counts).toEqual(want.counts);
    expect(live.inFlight).toBe(want.inFlight);
    expect(live.sentInWindow).toBe(want.sentInWindow);
    expect(live.topErrors).toEqual(want.topErrors);
    expect(delivery).toEqual(want.delivery);
    // the fixture really covers what is counted
    expect(want.topErrors.length).toBe(5);
    expect(Object.keys(want.delivery.byCode).length).toBeGreaterThan(1);
    expect(want.delivery.fellBackAfterReceipt).toBeGreaterThan(0);
  });

  it('agrees with pinreset_counts and pinreset_delivery_counts, for a batch range and the whole run', async () => {
    const range = { first: 101, last: 250 };
    const want = expected(all.filter((r) => r.account_id >= range.first && r.account_id <= range.last));
    expect(await readCounts(db, RUN, range)).toEqual(want.counts);
    expect(await readDeliveryCounts(db, RUN, range)).toEqual(want.delivery);
    expect(await readCounts(db, RUN)).toEqual(expected(all).counts);
    expect(await readDeliveryCounts(db, RUN)).toEqual(expected(all).delivery);
  });

  it('reads a run with no rows yet as zeros, not as nothing', async () => {
    await createRun(db, {
      id: 'reading-empty',
      reason: 'INC',
      operator: 't',
      params: { ...DEFAULT_PARAMS, cohort: 'file' },
    });
    const { live, delivery } = await readLedgerReading(db, 'reading-empty');
    expect(live.counts.planned).toBe(0);
    expect(live.topErrors).toEqual([]);
    expect(live.windowS).toBe(0);
    expect(live.lastActivityAtMs).toBeUndefined();
    expect(delivery.byCode).toEqual({});
    expect(delivery.delivered).toBe(0);
  });
});
