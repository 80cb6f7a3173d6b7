// Counts what the local providers really delivered, per account rather than per recipient:
// accounts may share a phone number or an email address (one holder, two accounts), and each
// account is owed its own message. An SMS body carries the account's reference and an email its
// account's Message-ID, so a repeat of the same body or Message-ID is a true duplicate.
import type { FakeSmtp } from './fake-smtp';
import type { FakeTwilio } from './fake-twilio';
import type { Db } from '../db/pool';

export interface DeliveryAudit {
  sms: number;
  /** SMS sent twice with the same body to the same number: the same account notified twice. */
  smsDuplicates: number;
  /** Deliberate second SMS after the first one's receipt said 30003 or 30001 (issue 11): not duplicates. */
  smsRetriesAfterReceipt: number;
  emails: number;
  /** Distinct Message-IDs: accounts notified by email. */
  emailAccounts: number;
  /** The same Message-ID delivered again (a resend after an ambiguous failure; mail stores keep one). */
  emailResends: number;
}

export function auditDeliveries(twilio: FakeTwilio, smtp: FakeSmtp): DeliveryAudit {
  const smsSeen = new Map<string, number>();
  const lastSid = new Map<string, string>();
  const outcomes = twilio.callbacks.outcomes();
  let retries = 0;
  for (const m of twilio.messages()) {
    const key = `${m.to}\n${m.body}`;
    const previous = lastSid.get(key);
    lastSid.set(key, m.sid);
    const o = previous ? outcomes.get(previous) : undefined;
    if (o && (o.code === '30003' || o.code === '30001')) {
      retries++;
      continue;
    }
    smsSeen.set(key, (smsSeen.get(key) ?? 0) + 1);
  }
  const idSeen = new Map<string, number>();
  for (const m of smtp.messages()) idSeen.set(m.messageId ?? '', (idSeen.get(m.messageId ?? '') ?? 0) + 1);
  const over = (counts: Map<string, number>) => [...counts.values()].reduce((n, c) => n + (c > 1 ? c - 1 : 0), 0);
  return {
    sms: twilio.messages().length,
    smsDuplicates: over(smsSeen),
    smsRetriesAfterReceipt: retries,
    emails: smtp.messages().length,
    emailAccounts: idSeen.size,
    emailResends: over(idSeen),
  };
}

/**
 * The run's delivery receipts against the local Twilio server's own record of the final outcome
 * it decided for each message: they must match exactly (issue 11). Also checks that every
 * account undelivered with 30005/30006 that has a usable email fell back to it.
 */
export interface ReceiptAudit {
  /** Final outcomes decided by the local server, per 'status' or 'status:code'. */
  server: Record<string, number>;
  /** Final receipts recorded for the run, the same way. */
  recorded: Record<string, number>;
  /** Messages whose recorded final outcome differs from the server's, or is missing. */
  mismatched: number;
  missing: number;
  /** Accounts undelivered with 30005/30006: fell back to email, or unreachable (no usable email), or not acted on yet. */
  fallbackDue: number;
  fellBack: number;
  unreachable: number;
  match: boolean;
}

export async function auditReceipts(db: Db, runId: string, twilio: FakeTwilio): Promise<ReceiptAudit> {
  const outcomes = twilio.callbacks.outcomes();
  const res = await db.query<{ message_sid: string; status: string; error_code: string | null }>(
    'SELECT message_sid, status, error_code FROM sms_receipts WHERE run_id = $1 AND rank >= 4',
    [runId],
  );
  const recordedBySid = new Map(res.rows.map((r) => [r.message_sid, r]));
  const key = (status: string, code: string | null) => (code ? `${status}:${code}` : status);
  const server: Record<string, number> = {};
  const recorded: Record<string, number> = {};
  let mismatched = 0;
  let missing = 0;
  const sids = new Set(twilio.messages().map((m) => m.sid));
  for (const [sid, o] of outcomes) {
    if (!sids.has(sid)) continue;
    server[key(o.status, o.code)] = (server[key(o.status, o.code)] ?? 0) + 1;
    const r = recordedBySid.get(sid);
    if (!r) missing++;
    else if (r.status !== o.status || r.error_code !== o.code) mismatched++;
  }
  for (const r of res.rows) recorded[key(r.status, r.error_code)] = (recorded[key(r.status, r.error_code)] ?? 0) + 1;
  const fb = await db.query<{ due: number; done: number; unreachable: number }>(
    `SELECT count(*)::int AS due, count(*) FILTER (WHERE l.delivery_action = 'fallback_email')::int AS done,
            count(*) FILTER (WHERE l.delivery_action = 'unreachable')::int AS unreachable
     FROM ledger l WHERE l.run_id = $1 AND l.delivery_code IN ('30005', '30006')`,
    [runId],
  );
  const { due, done, unreachable } = fb.rows[0];
  return {
    server,
    recorded,
    mismatched,
    missing,
    fallbackDue: due,
    fellBack: done,
    unreachable,
    match: mismatched === 0 && missing === 0 && res.rowCount === outcomes.size && done + unreachable === due,
  };
}
