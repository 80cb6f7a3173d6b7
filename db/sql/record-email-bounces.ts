import type { Sql } from '../pool';

export interface EmailBounce {
  /** The Message-ID we set (angle brackets included). */
  messageId: string;
  event: 'bounce' | 'dropped' | 'blocked';
  /** The relay's status or type (e.g. "5.1.1"); never the address or free text. */
  reason: string | null;
}

/** Records bounces by Message-ID; the first report of a message stays. */
export async function recordEmailBounces(db: Sql, bounces: EmailBounce[]): Promise<number> {
  if (bounces.length === 0) return 0;
  const res = await db.query(
    `INSERT INTO email_bounces (message_id, event, reason)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (message_id) DO NOTHING`,
    [bounces.map((b) => b.messageId), bounces.map((b) => b.event), bounces.map((b) => b.reason)],
  );
  return res.rowCount ?? 0;
}
