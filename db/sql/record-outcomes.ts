import type { Sql } from '../pool';
import type { Outcome } from '../../domain/outcome';

/** Writes a chunk's outcomes in one statement. */
export async function recordOutcomes(db: Sql, runId: string, outcomes: Outcome[]): Promise<number> {
  if (outcomes.length === 0) return 0;
  const res = await db.query<{ n: number }>('SELECT pinreset_record_outcomes($1, $2, $3, $4, $5, $6, $7) AS n', [
    runId,
    outcomes.map((o) => o.accountId),
    outcomes.map((o) => o.state),
    outcomes.map((o) => o.channel ?? null),
    outcomes.map((o) => o.fellBack),
    outcomes.map((o) => o.messageId ?? null),
    outcomes.map((o) => o.errorCode ?? null),
  ]);
  return res.rows[0].n;
}
