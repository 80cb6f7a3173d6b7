import type { Sql } from '../pool';

/** Parks as ambiguous the claims of a batch whose lease and grace have passed; returns how many. */
export async function parkExpiredClaims(
  db: Sql,
  runId: string,
  first: number,
  last: number,
  graceMs: number,
): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT pinreset_park_expired_claims($1, $2, $3, $4) AS n', [
    runId,
    first,
    last,
    graceMs,
  ]);
  return res.rows[0].n;
}
