import type { Sql } from '../pool';

/** Extends the lease of the rows `token` still holds; returns them and the run's status. */
export async function renewClaims(
  db: Sql,
  runId: string,
  token: string,
  accountIds: number[],
  leaseMs: number,
): Promise<{ held: number[]; runStatus: string | null }> {
  const res = await db.query('SELECT * FROM pinreset_renew_claims($1, $2, $3, $4)', [
    runId,
    token,
    accountIds,
    leaseMs,
  ]);
  const r = res.rows[0];
  return { held: (r?.held ?? []).map(Number), runStatus: r?.run_status ?? null };
}
