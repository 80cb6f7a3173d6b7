import type { Sql } from '../pool';

export type AmbiguousVerdict =
  | { verdict: 'found'; messageId: string; resolvedBy: 'sid' | 'callback' | 'list' }
  | { verdict: 'negative'; nextMs: number }
  | { verdict: 'postpone'; nextMs: number }
  | { verdict: 'resend'; leaseMs: number }
  | { verdict: 'held' };

/** Settles one parked row under the token of its lookup claim; false when the claim was lost. */
export async function settleAmbiguous(
  db: Sql,
  runId: string,
  token: string,
  accountId: number,
  v: AmbiguousVerdict,
): Promise<boolean> {
  const res = await db.query<{ ok: boolean }>(
    'SELECT pinreset_settle_ambiguous($1, $2, $3, $4, $5, $6, $7, $8) AS ok',
    [
      runId,
      token,
      accountId,
      v.verdict,
      v.verdict === 'found' ? v.messageId : null,
      v.verdict === 'found' ? v.resolvedBy : v.verdict === 'resend' ? 'resend' : v.verdict === 'held' ? 'held' : null,
      v.verdict === 'negative' || v.verdict === 'postpone' ? Math.round(v.nextMs) : null,
      v.verdict === 'resend' ? Math.round(v.leaseMs) : null,
    ],
  );
  return res.rows[0].ok;
}
