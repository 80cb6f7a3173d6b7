// The verdict of a chaos run, from two independent sources: PostgreSQL (ledger, accounts and the
// credential versions recorded before the run) and the local providers' own records of what they
// accepted. Counts only: nothing here prints a phone number, an address or a name.
import { domainToASCII } from 'node:url';
import type { Db } from '../db/pool';
import {
  checkActiveCohort,
  checkResets,
  notifyRows,
  runStatus,
  type NotifyRow,
  type ResetCheck,
  type VersionSnapshot,
} from '../db/sql/chaos-checks';
import { chooseChannel } from '../domain/channel';
import { referenceIn } from '../domain/templates';
import type { ChannelPolicy } from '../domain/types';

export interface SmsRecordLike {
  sid: string;
  to: string;
  body: string;
}

export interface EmailRecordLike {
  to: string[];
  /** Without angle brackets, as the local SMTP server records it. */
  messageId: string;
}

export interface VerifyInput {
  db: Db;
  runId: string;
  before: VersionSnapshot;
  /** Accounts active before an all_active run: the cohort must be exactly these. */
  activeIds?: number[];
  policy?: ChannelPolicy;
  sms: ReadonlyArray<SmsRecordLike>;
  emails: ReadonlyArray<EmailRecordLike>;
  /** What the local servers' own duplicate reports say (recipients with more than one message). */
  providerReports: { smsDuplicates: number; emailDuplicates: number; emailRawDuplicates: number };
  /** Compare each outcome with the channel the domain rules choose for the account (off when contacts change mid-run). */
  checkChannels?: boolean;
  /**
   * Second deliveries of an email whose holder was SIGKILLed between the relay's acceptance and the
   * ledger write (SMTP has no lookup, so `--ambiguous resend` mails it again: docs/operators.md,
   * "Exactly once"). Shown apart; every other extra delivery is a duplicate.
   */
  emailCrashResends?: number;
}

export interface ChaosFigures {
  runStatus: string | null;
  cohort: number;
  reset: ResetCheck;
  activeMissing: number;
  cohortNotActive: number;
  notify: {
    sentSms: number;
    sentEmail: number;
    fellBack: number;
    unreachable: number;
    failed: number;
    skipped: number;
    pending: number;
  };
  /** Settled without a sent message and without a reason. */
  noReason: number;
  /** Outcome contradicts the domain's channel choice for the account. */
  channelMismatch: number;
  sms: {
    accepted: number;
    /** The same notification (same number, same account reference) accepted more than once. */
    duplicates: number;
    /** Account ids (opaque) of the first few duplicates, for diagnosis. */
    duplicateAccountIds: number[];
    /** Accepted by the provider but not recorded as an SMS sent to that account. */
    unrecorded: number;
    /** Recorded as sent by SMS but absent from the provider's records. */
    missing: number;
    /** Numbers with more than one message (fake's duplicates()): shared numbers, one message per account. */
    recipientsWithSeveral: number;
    recipientsWithSeveralUnexplained: number;
  };
  email: {
    deliveries: number;
    distinctMessageIds: number;
    /**
     * Deliveries beyond one per account: the same Message-ID (one per account) delivered again,
     * plus distinct Message-IDs beyond the accounts notified at an address. Relays rewrite
     * Message-IDs and mailboxes do not deduplicate, so every extra delivery is a duplicate.
     */
    duplicates: number;
    /** The same Message-ID delivered more than once (part of `duplicates`). */
    rawDuplicateMessageIds: number;
    /** Of `duplicates`, the documented crash resends (input.emailCrashResends). */
    crashResends: number;
    /** Account ids (opaque) of the first few accounts mailed more than once, for diagnosis. */
    duplicateAccountIds: number[];
    rawExtraDeliveries: number;
    unrecorded: number;
    missing: number;
    recipientsWithSeveral: number;
    recipientsWithSeveralUnexplained: number;
  };
  providerReports: VerifyInput['providerReports'];
  /** Rows some attempt parked as ambiguous, by how they were settled (sid, callback, list, resend, held, or unresolved). */
  ambiguous: Record<string, number>;
}

export interface ChaosVerdict {
  pass: boolean;
  problems: string[];
  figures: ChaosFigures;
}

/** Case-folded address with an ASCII (punycode) domain, so an IDN address matches its envelope form. */
export function normalizeAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address.toLowerCase();
  const domain = address.slice(at + 1);
  return `${address.slice(0, at)}@${(domainToASCII(domain) || domain).toLowerCase()}`;
}

const stripBrackets = (id: string) => id.replace(/^<|>$/g, '');

function countBy<K>(keys: Iterable<K>): Map<K, number> {
  const m = new Map<K, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

export async function verifyRun(input: VerifyInput): Promise<ChaosVerdict> {
  const { db, runId } = input;
  const problems: string[] = [];
  const status = await runStatus(db, runId);
  const reset = await checkResets(db, runId, input.before);
  const cohortCheck = input.activeIds
    ? await checkActiveCohort(db, runId, input.activeIds)
    : { activeMissing: 0, cohortNotActive: 0 };
  const rows = await notifyRows(db, runId);

  // ---- ledger -------------------------------------------------------------------------------
  const notify = { sentSms: 0, sentEmail: 0, fellBack: 0, unreachable: 0, failed: 0, skipped: 0, pending: 0 };
  let noReason = 0;
  let channelMismatch = 0;
  for (const r of rows) {
    if (r.notifyState === 'sent') {
      if (r.channel === 'sms') notify.sentSms++;
      else notify.sentEmail++;
      if (r.fellBack) notify.fellBack++;
    } else if (r.notifyState === 'unreachable') notify.unreachable++;
    else if (r.notifyState === 'failed') notify.failed++;
    else if (r.notifyState === 'skipped') notify.skipped++;
    else notify.pending++;
    if (['unreachable', 'failed', 'skipped'].includes(r.notifyState) && !r.errorCode) noReason++;
    if (input.checkChannels !== false && !channelAgrees(r, input.policy ?? 'sms_then_email')) channelMismatch++;
  }

  // ---- SMS: provider records against the ledger -----------------------------------------------
  const smsSent = rows.filter((r) => r.notifyState === 'sent' && r.channel === 'sms');
  const expectedSms = new Map<string, NotifyRow>(); // "to|ref" -> row
  for (const r of smsSent) expectedSms.set(`${r.phone}|${r.ref}`, r);
  const smsByKey = countBy(input.sms.map((m) => `${m.to}|${referenceIn(m.body) ?? m.body}`));
  const sids = new Map(input.sms.map((m) => [m.sid, m.to]));
  let smsDuplicates = 0;
  let smsUnrecorded = 0;
  const duplicateAccountIds: number[] = [];
  for (const [key, n] of smsByKey) {
    if (n > 1) {
      smsDuplicates += n - 1;
      const id = expectedSms.get(key)?.accountId;
      if (id !== undefined && duplicateAccountIds.length < 20) duplicateAccountIds.push(id);
    }
    if (!expectedSms.has(key)) smsUnrecorded += n;
  }
  let smsMissing = 0;
  for (const [key, r] of expectedSms) {
    if (!smsByKey.has(key) || sids.get(r.providerMessageId ?? '') !== r.phone) smsMissing++;
  }
  const smsPerNumber = countBy(input.sms.map((m) => m.to));
  const smsAccountsPerNumber = countBy(smsSent.map((r) => r.phone!));
  let smsSeveral = 0;
  let smsSeveralUnexplained = 0;
  for (const [to, n] of smsPerNumber) {
    if (n < 2) continue;
    smsSeveral++;
    if (n !== smsAccountsPerNumber.get(to)) smsSeveralUnexplained++;
  }

  // ---- email ----------------------------------------------------------------------------------
  const emailSent = rows.filter((r) => r.notifyState === 'sent' && r.channel === 'email');
  const expectedMail = new Map<string, NotifyRow>(); // Message-ID -> row
  for (const r of emailSent) expectedMail.set(stripBrackets(r.providerMessageId ?? ''), r);
  const deliveriesById = new Map<string, Set<string>>();
  const perId = countBy(input.emails.map((m) => m.messageId));
  for (const m of input.emails) {
    let set = deliveriesById.get(m.messageId);
    if (!set) deliveriesById.set(m.messageId, (set = new Set()));
    for (const to of m.to) set.add(normalizeAddress(to));
  }
  let rawDupIds = 0;
  let rawExtra = 0;
  let mailUnrecorded = 0;
  const emailDuplicateAccountIds: number[] = [];
  for (const [id, n] of perId) {
    if (n > 1) {
      rawDupIds++;
      rawExtra += n - 1;
      const accountId = expectedMail.get(id)?.accountId;
      if (accountId !== undefined && emailDuplicateAccountIds.length < 20) emailDuplicateAccountIds.push(accountId);
    }
    if (!expectedMail.has(id)) mailUnrecorded++;
  }
  let mailMissing = 0;
  for (const [id, r] of expectedMail) {
    const to = deliveriesById.get(id);
    if (!to || !r.email || !to.has(normalizeAddress(r.email))) mailMissing++;
  }
  // Distinct Message-IDs per recipient against the accounts notified at that address.
  const idsPerRecipient = new Map<string, Set<string>>();
  for (const m of input.emails) {
    for (const to of m.to) {
      const k = normalizeAddress(to);
      let set = idsPerRecipient.get(k);
      if (!set) idsPerRecipient.set(k, (set = new Set()));
      set.add(m.messageId);
    }
  }
  const mailAccountsPerRecipient = countBy(emailSent.map((r) => normalizeAddress(r.email ?? '')));
  let mailDuplicates = 0;
  let mailSeveral = 0;
  let mailSeveralUnexplained = 0;
  for (const [to, ids] of idsPerRecipient) {
    const expected = mailAccountsPerRecipient.get(to) ?? 0;
    if (ids.size > expected) mailDuplicates += ids.size - expected;
    // Counted per delivery, not per distinct Message-ID.
    if (ids.size > 1) {
      mailSeveral++;
      if (ids.size !== expected) mailSeveralUnexplained++;
    }
  }

  const figures: ChaosFigures = {
    runStatus: status?.status ?? null,
    cohort: reset.cohort,
    reset,
    ...cohortCheck,
    notify,
    noReason,
    channelMismatch,
    sms: {
      accepted: input.sms.length,
      duplicates: smsDuplicates,
      duplicateAccountIds,
      unrecorded: smsUnrecorded,
      missing: smsMissing,
      recipientsWithSeveral: smsSeveral,
      recipientsWithSeveralUnexplained: smsSeveralUnexplained,
    },
    email: {
      deliveries: input.emails.length,
      distinctMessageIds: perId.size,
      duplicates: mailDuplicates,
      duplicateAccountIds: emailDuplicateAccountIds,
      rawDuplicateMessageIds: rawDupIds,
      rawExtraDeliveries: rawExtra,
      crashResends: Math.min(input.emailCrashResends ?? 0, rawExtra),
      unrecorded: mailUnrecorded,
      missing: mailMissing,
      recipientsWithSeveral: mailSeveral,
      recipientsWithSeveralUnexplained: mailSeveralUnexplained,
    },
    providerReports: input.providerReports,
    ambiguous: Object.fromEntries(
      countBy(
        rows
          .filter((r) => r.everAmbiguous)
          .map((r) =>
            r.notifyState === 'ambiguous' && r.resolvedBy !== 'held' ? 'unresolved' : (r.resolvedBy ?? 'unresolved'),
          ),
      ),
    ),
  };
  figures.email.duplicates = mailDuplicates + rawExtra;

  const expect = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem);
  };
  expect(
    status?.status === 'completed' && status.finished,
    `run status is ${status?.status ?? 'missing'}, not completed`,
  );
  expect(reset.cohort > 0, 'the cohort is empty');
  expect(
    cohortCheck.activeMissing === 0,
    `${cohortCheck.activeMissing} exposed (open) accounts are missing from the cohort`,
  );
  expect(
    cohortCheck.cohortNotActive === 0,
    `${cohortCheck.cohortNotActive} cohort accounts were closed or deleted before the run`,
  );
  expect(reset.resetPending === 0, `${reset.resetPending} cohort accounts still wait for their reset`);
  expect(
    reset.resetOnce === reset.resetRows,
    `${reset.resetRows - reset.resetOnce} reset accounts were not reset exactly once`,
  );
  expect(reset.resetTwice === 0, `${reset.resetTwice} accounts were reset more than once`);
  expect(reset.resetMissing === 0, `${reset.resetMissing} accounts marked reset kept their credential version`);
  expect(reset.skippedChanged === 0, `${reset.skippedChanged} skipped accounts changed credential version`);
  expect(reset.skippedNoReason === 0, `${reset.skippedNoReason} skipped accounts have no reason`);
  expect(reset.outsideChanged === 0, `${reset.outsideChanged} accounts outside the cohort changed credential version`);
  expect(notify.pending === 0, `${notify.pending} cohort accounts are not settled`);
  expect(noReason === 0, `${noReason} accounts not notified have no reason`);
  expect(channelMismatch === 0, `${channelMismatch} outcomes contradict the channel rules`);
  expect(smsDuplicates === 0, `${smsDuplicates} duplicate SMS (same number, same account reference)`);
  expect(smsUnrecorded === 0, `${smsUnrecorded} SMS accepted by the provider are not recorded as sent`);
  expect(smsMissing === 0, `${smsMissing} SMS recorded as sent are not in the provider's records`);
  expect(smsSeveralUnexplained === 0, `${smsSeveralUnexplained} numbers got more SMS than accounts notified there`);
  const crashResends = figures.email.crashResends;
  expect(
    mailDuplicates + rawExtra - crashResends === 0,
    `${mailDuplicates + rawExtra - crashResends} duplicate email deliveries (beyond one per account${crashResends ? `, besides ${crashResends} crash resends` : ''})`,
  );
  const unresolved = figures.ambiguous.unresolved ?? 0;
  expect(unresolved === 0, `${unresolved} ambiguous notifications were neither resolved nor held with a reason`);
  expect(mailUnrecorded === 0, `${mailUnrecorded} emails delivered are not recorded as sent`);
  expect(mailMissing === 0, `${mailMissing} emails recorded as sent were not delivered`);
  expect(
    mailSeveralUnexplained === 0,
    `${mailSeveralUnexplained} addresses got more distinct emails than accounts notified there`,
  );
  return { pass: problems.length === 0, problems, figures };
}

/** Whether a settled outcome fits the channel the domain rules pick for the account. */
function channelAgrees(r: NotifyRow, policy: ChannelPolicy): boolean {
  if (r.resetState === 'skipped') return r.notifyState === 'skipped';
  if (r.notifyState === 'skipped') return r.status === null || r.status === 'closed' || r.status === 'deleted';
  const choice = chooseChannel(r, policy);
  if (r.notifyState === 'unreachable') {
    if ('unreachable' in choice) return choice.unreachable === r.errorCode;
    // SMS-capable, no email: a delivery receipt (30005/30006...) said the SMS never arrived (issue 11).
    return choice.channel === 'sms' && /^300\d\d$/.test(r.errorCode ?? '');
  }
  if ('unreachable' in choice) return false;
  if (r.notifyState === 'sent' || r.notifyState === 'failed') {
    if (r.channel === choice.channel) return !r.fellBack;
    // Email after a permanent SMS refusal.
    return choice.channel === 'sms' && r.channel === 'email' && r.fellBack;
  }
  return false;
}
