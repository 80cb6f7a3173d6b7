// A pause or cancel reaches every send path at once (LISTEN/NOTIFY), not at the next lease
// renewal: here the renewal is a minute away, so only the notification can stop the lease.
// Real PostgreSQL; the same code the worker runs (activities/claim-lease.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/pool';
import { ClaimLease, RunStoppedError } from '../activities/claim-lease';
import { createRun } from '../db/sql/create-run';
import { recordRunControl } from '../db/sql/record-run-control';
import { DEFAULT_PARAMS } from '../domain/run';
import { freshDatabase } from './support/harness';
import { until } from './support/until';

describe('run-control notifications', () => {
  let db: Db;
  beforeAll(async () => {
    ({ db } = await freshDatabase('run-control'));
  });
  afterAll(async () => {
    await db?.end();
  });

  const listening = async () => {
    const r = await db.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pinreset-run-control' AND datname = current_database()`,
    );
    return r.rows[0].n as number;
  };

  it('stops the leases of the paused run at once, and only those', async () => {
    for (const id of ['ctl-a', 'ctl-b'])
      await createRun(db, { id, reason: 'INC-ctl', operator: 't', params: { ...DEFAULT_PARAMS, cohort: 'file' } });
    const stops: Record<string, Error[]> = { a: [], b: [] };
    // Renewal every 60 s: within this test only the notification can make a lease renew.
    const a = new ClaimLease(db, 'ctl-a', 240_000, (e) => stops.a.push(e), 60_000);
    const b = new ClaimLease(db, 'ctl-b', 240_000, (e) => stops.b.push(e), 60_000);
    a.start();
    b.start();
    try {
      await until('the listener to be connected', async () => (await listening()) === 1, 10_000);
      expect(await recordRunControl(db, 'ctl-a', 1, 'paused', 'drill')).toBe(true);
      await until("the paused run's lease to stop", async () => a.stopped, 10_000, 20);
      expect(a.stopped).toBeInstanceOf(RunStoppedError);
      expect(a.stopped!.message).toContain('paused');
      expect(stops.a).toHaveLength(1);
      expect(b.stopped).toBeUndefined(); // another run's attempt keeps sending
      // An older control write changes nothing and notifies nobody.
      expect(await recordRunControl(db, 'ctl-b', 0, 'cancelling')).toBe(false);
      await new Promise((r) => setTimeout(r, 300));
      expect(b.stopped).toBeUndefined();
      expect(await recordRunControl(db, 'ctl-b', 1, 'cancelling', 'drill')).toBe(true);
      await until("the cancelled run's lease to stop", async () => b.stopped, 10_000, 20);
      expect(b.stopped!.message).toContain('cancelling');
    } finally {
      a.stop();
      b.stop();
    }
    // No subscriber left: the connection closes (a draining worker is not kept alive by it).
    await until('the listener to close', async () => (await listening()) === 0, 10_000);
  });
});
