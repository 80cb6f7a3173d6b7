// Shared types for pinreset. Workflow-facing types carry only opaque ids, ranges and counts:
// never a phone number, email address, name or PIN.
//
// Glossary (the words used in code, docs, the CLI and the Web UI):
//   run              one incident's reset of a cohort, started once (`pinreset start`), a row in
//                    `runs` and one workflow (with its continue-as-new chain); has a reason and operator.
//   cohort           the accounts of a run, frozen in the ledger when it starts: every active account,
//                    a cohort file's ids, or a redrive's failed rows.
//   batch            a keyset range of account ids (first..last) handled by one activity: reset or notify.
//   ledger           one row per run and account: reset state, notification state, reference, lease,
//                    delivery state. It moves only forward; it is the truth that counts are read from.
//   checkpoint       a row of counts written while the run goes, for `status` without a worker and history.
//   canary           the first N notifications of a run; the rest wait for an operator's `approve`.
//                    PINs are all reset at once regardless.
//   redrive          a new run over the accounts an earlier run failed to notify; it resets no PIN.
//   exposure window  from the run's start to the last PIN of its cohort invalidated: how long a leaked
//                    PIN still works.
//   reference        the 16-hex-digit code in each message (HMAC of the account id under the run's key):
//                    how a message is found at the provider and in callbacks, and how customers quote it.
//   send budget      the rate a sender (SMS number or Messaging Service, email relay) allows, shared by
//                    every run and worker.
import type { DeliveryCounts } from './delivery';

/** Opaque account id (accounts.id). Plain number: ids stay far below 2^53. */
export type AccountId = number;

export type ChannelPolicy = 'sms_then_email' | 'sms_only' | 'email_only';
export const CHANNEL_POLICIES: readonly ChannelPolicy[] = ['sms_then_email', 'sms_only', 'email_only'];

export type Channel = 'sms' | 'email';

/** Where a ledger row stands on the reset side. */
export type ResetState = 'pending' | 'reset' | 'skipped';
/** Where a ledger row stands on the notification side. */
export type NotifyState = 'pending' | 'sending' | 'ambiguous' | 'sent' | 'unreachable' | 'failed' | 'skipped';

/** A batch is a keyset range of account ids, both ends inclusive. */
export interface BatchRange {
  first: AccountId;
  last: AccountId;
}

/** A batch as planned: its range and how many cohort accounts it holds. */
export interface PlannedBatch extends BatchRange {
  size: number;
}

/** Outcome counts of a run, a batch or a checkpoint. */
export interface Counts {
  planned: number;
  reset: number;
  skipped: number;
  sentSms: number;
  sentEmail: number;
  fellBack: number;
  unreachable: number;
  failed: number;
  /** Reset, but closed or deleted before its notification: not notified, with the reason. */
  notifySkipped: number;
  /** Accounts whose notification is not settled yet. */
  pending: number;
  /**
   * Parked: an attempt may have reached the provider and no lookup has settled it yet, or the
   * run's policy holds it (`--ambiguous hold`). Never sent again blindly.
   */
  ambiguous: number;
  /** What the delivery receipts say (issue 11); absent before the first follow-up. */
  delivery?: DeliveryCounts;
}

export function zeroCounts(): Counts {
  return {
    planned: 0,
    reset: 0,
    skipped: 0,
    sentSms: 0,
    sentEmail: 0,
    fellBack: 0,
    unreachable: 0,
    failed: 0,
    notifySkipped: 0,
    pending: 0,
    ambiguous: 0,
  };
}

// ---- Providers -------------------------------------------------------------------------------

/** How a provider failure must be handled. */
export type FailureKind =
  /** The provider will never accept this recipient (invalid number, opted out, landline...). */
  | 'permanent'
  /** Throttled (HTTP 429 / Twilio 20429): not processed, safe to retry after a pause. */
  | 'rate_limited'
  /** Refused before processing (e.g. SMTP 4xx): safe to retry. */
  | 'transient'
  /** The request may have been processed (timeout, reset, 5xx after sending): reconcile before resending. */
  | 'ambiguous';

export interface ClassifiedFailure {
  kind: FailureKind;
  /** Provider error code, e.g. '21211', 'http_503', 'smtp_450', 'ECONNRESET'. Never contains customer data. */
  code: string;
}

export interface SmsMessage {
  to: string;
  body: string;
  /** Where the provider reports delivery for this message (carries the row's reference). */
  statusCallback?: string;
  /** The run's frozen sender, replacing the worker's configured one. */
  sender?: { from?: string; messagingServiceSid?: string };
}

export interface SentSms {
  sid: string;
}

export interface SmsRecord {
  sid: string;
  to: string;
  body: string;
  dateCreated: Date;
  /** Twilio's status now ('queued', 'sent', 'delivered', 'undelivered', 'failed', ...) and its error code. */
  status?: string;
  errorCode?: string | null;
}

export interface SmsSender {
  send(message: SmsMessage): Promise<SentSms>;
  /** One message by SID, or undefined when the provider does not know it: the dependable read. */
  fetch(sid: string): Promise<SmsRecord | undefined>;
  /**
   * Every message to `to` whose send date (a GMT date: the provider filters by day, not time) is on
   * or after `day`, all pages. The list lags the creates: a recent message may be missing.
   */
  listToSince(to: string, day: Date): Promise<SmsRecord[]>;
  /** Classify an error thrown by send/fetch/listToSince. */
  classify(error: unknown): ClassifiedFailure;
}

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Deterministic per run and account, so a resend after an ambiguous failure is deduplicated downstream. */
  messageId: string;
  /** The run's frozen sender address, replacing the worker's configured one. */
  from?: string;
}

export interface SentEmail {
  messageId: string;
}

export interface EmailSender {
  send(message: EmailMessage): Promise<SentEmail>;
  classify(error: unknown): ClassifiedFailure;
  close(): Promise<void>;
}
