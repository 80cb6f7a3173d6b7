// Counts what the local providers really delivered, per account rather than per recipient:
// accounts may share a phone number or an email address (one holder, two accounts), and each
// account is owed its own message. An SMS body carries the account's reference and an email its
// account's Message-ID, so a repeat of the same body or Message-ID is a true duplicate.
import type { FakeSmtp } from './fake-smtp';
import type { FakeTwilio } from './fake-twilio';

export interface DeliveryAudit {
  sms: number;
  /** SMS sent twice with the same body to the same number: the same account notified twice. */
  smsDuplicates: number;
  emails: number;
  /** Distinct Message-IDs: accounts notified by email. */
  emailAccounts: number;
  /** The same Message-ID delivered again (a resend after an ambiguous failure; mail stores keep one). */
  emailResends: number;
}

export function auditDeliveries(twilio: FakeTwilio, smtp: FakeSmtp): DeliveryAudit {
  const smsSeen = new Map<string, number>();
  for (const m of twilio.messages()) {
    const key = `${m.to}\n${m.body}`;
    smsSeen.set(key, (smsSeen.get(key) ?? 0) + 1);
  }
  const idSeen = new Map<string, number>();
  for (const m of smtp.messages()) idSeen.set(m.messageId ?? '', (idSeen.get(m.messageId ?? '') ?? 0) + 1);
  const over = (counts: Map<string, number>) => [...counts.values()].reduce((n, c) => n + (c > 1 ? c - 1 : 0), 0);
  return {
    sms: twilio.messages().length,
    smsDuplicates: over(smsSeen),
    emails: smtp.messages().length,
    emailAccounts: idSeen.size,
    emailResends: over(idSeen),
  };
}
