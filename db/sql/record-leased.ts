import type { Sql } from '../pool';
import type { Outcome } from '../../domain/outcome';

/**
 * Writes outcomes under the claimer's token; returns the ids actually recorded. An id missing from
 * the answer was taken over by another attempt: this attempt no longer owns it.
 */
export async function recordLeased(db: Sql, runId: string, token: string, outcomes: Outcome[]): Promise<Set<number>> {
  if (outcomes.length === 0) return new Set();
  const res = await db.query<{ ids: number[] }>(
    'SELECT pinreset_record_leased($1, $2, $3, $4, $5, $6, $7, $8, $9) AS ids',
    [
      runId,
      token,
      outcomes.map((o) => o.accountId),
      outcomes.map((o) => o.state),
      outcomes.map((o) => o.channel ?? null),
      outcomes.map((o) => o.fellBack),
      outcomes.map((o) => o.messageId ?? null),
      outcomes.map((o) => o.errorCode ?? null),
      outcomes.map((o) => o.nextLookupMs ?? null),
    ],
  );
  return new Set(res.rows[0].ids.map(Number));
}
