// The cohort freeze at scale (issue 12, migration 012): bounded chunks, each its own transaction;
// a repeated or concurrent attempt continues where the other stopped and freezes each account
// once; accounts created after the freeze began are not in the cohort; the count is exact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/pool';
import { createRun } from '../db/sql/create-run';
import { freezeCohortChunk } from '../db/sql/freeze-cohort-chunk';
import { DEFAULT_PARAMS } from '../domain/run';
import { account, insertAccounts } from './support/accounts';
import { freshDatabase } from './support/harness';

describe('cohort freeze in chunks', () => {
  let db: Db;
  beforeAll(async () => {
    ({ db } = await freshDatabase('freeze'));
    // 2,000 accounts; every seventh closed and every eleventh deleted (not in the cohort).
    await insertAccounts(
      db,
      Array.from({ length: 2000 }, (_, i) => {
        const id = i + 1;
        return account(id, {
          status: id % 7 === 0 ? 'closed' : id % 11 === 0 ? 'deleted' : id % 5 === 0 ? 'suspended' : 'active',
        });
      }),
    );
  });
  afterAll(async () => {
    await db?.end();
  });

  const open = Array.from({ length: 2000 }, (_, i) => i + 1).filter((id) => id % 7 !== 0 && id % 11 !== 0);

  it('two attempts at once, in chunks of 97, freeze every open account exactly once', async () => {
    await createRun(db, { id: 'freeze-1', reason: 'INC', operator: 't', params: { ...DEFAULT_PARAMS } });
    const calls = [0, 0];
    const attempt = async (k: number) => {
      for (;;) {
        calls[k]++;
        const r = await freezeCohortChunk(db, 'freeze-1', 97, 10_000);
        if (r.done) return r.planned;
        // An account created mid-freeze (above the highest id when it began) stays out.
        if (calls[k] === 3 && k === 0) await insertAccounts(db, [account(5000)]);
      }
    };
    const [a, b] = await Promise.all([attempt(0), attempt(1)]);
    expect(a).toBe(open.length);
    expect(b).toBe(open.length);
    // Bounded: neither attempt froze the cohort in one statement.
    expect(calls[0] + calls[1]).toBeGreaterThanOrEqual(Math.ceil(open.length / 97));
    const ledger = await db.query<{ account_id: number }>(
      "SELECT account_id FROM ledger WHERE run_id = 'freeze-1' ORDER BY account_id",
    );
    expect(ledger.rows.map((r) => r.account_id)).toEqual(open);
    const run = await db.query(
      "SELECT planned, frozen_through, freeze_upto, cohort_frozen_at FROM runs WHERE id = 'freeze-1'",
    );
    expect(run.rows[0]).toMatchObject({ planned: open.length, freeze_upto: 2000, frozen_through: 2000 });
    expect(run.rows[0].cohort_frozen_at).toBeInstanceOf(Date);

    // A later attempt (a retry after the activity's result was lost) changes nothing.
    expect(await freezeCohortChunk(db, 'freeze-1', 97, 10_000)).toEqual({ done: true, planned: open.length });
    const again = await db.query("SELECT count(*)::int AS n FROM ledger WHERE run_id = 'freeze-1'");
    expect(again.rows[0].n).toBe(open.length);
  });

  it('a run frozen whole by the single-statement function of 007 counts as frozen', async () => {
    await createRun(db, { id: 'freeze-old', reason: 'INC', operator: 't', params: { ...DEFAULT_PARAMS } });
    const old = await db.query<{ n: number }>("SELECT pinreset_materialize_active_cohort('freeze-old') AS n");
    expect(await freezeCohortChunk(db, 'freeze-old', 97, 10_000)).toEqual({ done: true, planned: old.rows[0].n });
  });

  it('refuses a chunk below one account and an unknown run, naming the problem', async () => {
    await expect(freezeCohortChunk(db, 'freeze-1', 0, 10_000)).rejects.toThrow(
      /freeze chunk must be at least 1 account/,
    );
    await expect(freezeCohortChunk(db, 'no-such-run', 10, 10_000)).rejects.toThrow(/unknown run no-such-run/);
  });

  it('runs each chunk under the statement timeout it is given', async () => {
    await createRun(db, { id: 'freeze-slow', reason: 'INC', operator: 't', params: { ...DEFAULT_PARAMS } });
    // Another transaction holds the run's row: the chunk waits for it, and its timeout ends the wait.
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT 1 FROM runs WHERE id = 'freeze-slow' FOR UPDATE");
      await expect(freezeCohortChunk(db, 'freeze-slow', 97, 1_000)).rejects.toThrow(/statement timeout/);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    // Nothing half-applied: the next attempt freezes the whole cohort.
    let r;
    do r = await freezeCohortChunk(db, 'freeze-slow', 500, 10_000);
    while (!r.done);
    // Account 5000 (created during the first test) existed when this freeze began: it is in.
    expect(r.planned).toBe(open.length + 1);
  });
});
