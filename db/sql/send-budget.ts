import type { Sql } from '../pool';

export interface BudgetGrant {
  /** False: nothing reserved, the next slot is waitMs away (more than the caller's maximum);
   *  waitMs -1: the run is stopping (cancelled), no slot will come. */
  granted: boolean;
  waitMs: number;
  /** The run's ceiling and the sender's effective rate (after any throttling penalty); Infinity = unlimited. */
  runRate: number;
  senderRate: number;
}

/** Reserves n slots for the run on the sender's shared budget, if usable within maxWaitMs. */
export async function acquireSendBudget(
  db: Sql,
  runId: string,
  sender: string,
  n: number,
  defaultRate: number,
  maxWaitMs: number,
): Promise<BudgetGrant> {
  const res = await db.query<{ granted: boolean; wait_ms: number; run_rate: number; sender_rate: number }>(
    'SELECT * FROM pinreset_acquire_send_budget($1, $2, $3, $4, $5)',
    [runId, sender, n, defaultRate, maxWaitMs],
  );
  const r = res.rows[0];
  return { granted: r.granted, waitMs: r.wait_ms, runRate: r.run_rate, senderRate: r.sender_rate };
}

/** Provider throttling: the sender's budget withholds a further share of its rate (capped, decaying). */
export async function penalizeSender(db: Sql, sender: string): Promise<void> {
  await db.query('SELECT pinreset_penalize_sender($1)', [sender]);
}

/** Sets a sender's budget (messages/s for all runs together; Infinity = unlimited). */
export async function setSenderRate(db: Sql, sender: string, rate: number): Promise<void> {
  await db.query('SELECT pinreset_set_sender_rate($1, $2)', [sender, rate]);
}

export interface SenderBudget {
  sender: string;
  rate: number;
  /** Share of the rate withheld now after provider throttling (0..0.5). */
  penalty: number;
  /**
   * The schedule's position against now, seconds: > 0, slots are handed out that far ahead (sending
   * at the full budget); <= 0, idle for that long since its last slot. Null for an unlimited sender.
   */
  aheadSeconds: number | null;
  updatedAt: Date;
}

export async function listSenderBudgets(db: Sql): Promise<SenderBudget[]> {
  const res = await db.query<SenderBudget>(
    `SELECT sender, rate, pinreset_budget_penalty(penalty, penalized_at) AS penalty,
            CASE WHEN rate = 'Infinity' THEN NULL ELSE extract(epoch FROM tat - clock_timestamp())::float8 END AS "aheadSeconds",
            updated_at AS "updatedAt"
     FROM send_budgets ORDER BY sender`,
  );
  return res.rows;
}

/** Cancel: sends of the run waiting for a slot stop now (the gate throws RunStoppingError). */
export async function markRunStopping(db: Sql, runId: string): Promise<void> {
  await db.query('UPDATE runs SET stopping = true WHERE id = $1', [runId]);
}
