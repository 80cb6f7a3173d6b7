import type { Sql } from '../pool';
import { toClaimedRow, type ClaimedRow } from './claim-notify-leased';

export interface ParkedRow extends ClaimedRow {
  channel: 'sms' | 'email' | null;
  providerMessageId: string | null;
  /** Latest moment the parked attempt may have reached the provider. */
  ambiguousSince: Date;
  negativeLookups: number;
}

/** Claims the parked rows of a batch that are due for a lookup, under a token and a lease. */
export async function claimDueAmbiguous(
  db: Sql,
  runId: string,
  first: number,
  last: number,
  limit: number,
  token: string,
  leaseMs: number,
): Promise<ParkedRow[]> {
  const res = await db.query('SELECT * FROM pinreset_claim_due_ambiguous($1, $2, $3, $4, $5, $6)', [
    runId,
    first,
    last,
    limit,
    token,
    leaseMs,
  ]);
  return res.rows.map((r) => ({
    ...toClaimedRow(r),
    channel: r.channel,
    providerMessageId: r.provider_message_id,
    ambiguousSince: r.ambiguous_since,
    negativeLookups: r.negative_lookups,
  }));
}
