import type { Sql } from '../pool';

export interface Unsettled {
  /** Rows waiting for a claim. */
  pending: number;
  /** Rows some attempt holds (or held: its lease may have run out). */
  sending: number;
  /** Parked rows still waiting for a lookup (held rows excluded). */
  ambiguousDue: number;
  nextDue: Date | null;
  nextExpiry: Date | null;
}

/** What is not settled yet in a batch, and when something next becomes actionable. */
export async function readUnsettled(db: Sql, runId: string, first: number, last: number): Promise<Unsettled> {
  const res = await db.query('SELECT * FROM pinreset_unsettled($1, $2, $3)', [runId, first, last]);
  const r = res.rows[0];
  return {
    pending: r.pending,
    sending: r.sending,
    ambiguousDue: r.ambiguous_due,
    nextDue: r.next_due,
    nextExpiry: r.next_expiry,
  };
}
