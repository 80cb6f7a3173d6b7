// Notifies one account: chooses the channel, sends through the gate while the claim's lease allows
// it, retries only what is safe to retry (throttling, failures before the request left), parks
// what may have been sent, and falls back from SMS to email on permanent errors. Never resends in
// place after an ambiguous failure: that is what sent duplicates against Twilio's lagging list.
import type { ClaimedRow } from '../db/sql/claim-notify-leased';
import { chooseChannel } from '../domain/channel';
import type { Outcome } from '../domain/outcome';
import { backoffMs, THROTTLE_BACKOFF, TRANSIENT_BACKOFF } from '../domain/retry';
import { emailMessageId, emailSubject, emailText, smsText } from '../domain/templates';
import type { ChannelPolicy, ClassifiedFailure, EmailSender, SmsSender } from '../domain/types';
import type { MessageConfig } from '../config';
import { isSmsConfigError } from '../domain/sms-errors';
import { isEmailConfigError } from '../domain/email-errors';
import type { ClaimLease } from './claim-lease';
import type { Clock, SendEvent } from './deps';
import type { SendGate } from './send-gate';
import { statusCallbackUrl } from '../domain/delivery';

export interface NotifyContext {
  runId: string;
  policy: ChannelPolicy;
  sms: SmsSender;
  email: EmailSender;
  gate: SendGate;
  clock: Clock;
  /** The run's frozen message parameters. */
  message: MessageConfig;
  random: () => number;
  onSend: (e: SendEvent) => void;
  lease: ClaimLease;
  /** Wait before the first lookup of a parked attempt (run parameter holdMs). */
  holdMs: number;
  /** PUBLIC_CALLBACK_URL, when status callbacks are on. */
  statusCallbackBase?: string;
}

/** The provider refused our account or sender, not the recipient. Carries only the code. */
export class ProviderConfigError extends Error {
  constructor(
    readonly channel: 'sms' | 'email',
    readonly code: string,
  ) {
    super(`${channel} provider rejected the configuration (${code}): check credentials and sender`);
    this.name = 'ProviderConfigError';
  }
}

type SendResult =
  { ok: true; id: string } | { ok: false; kind: 'permanent' | 'failed' | 'ambiguous' | 'not_sent'; code: string };

/** The attempt must stop: nothing more goes to a provider. */
function mustStop(ctx: NotifyContext, signal: AbortSignal): boolean {
  return signal.aborted || !ctx.lease.canSend();
}

/** Backoff that ends early when the attempt is stopped. */
async function pause(ctx: NotifyContext, ms: number, signal: AbortSignal): Promise<void> {
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      ctx.clock.sleep(ms),
      new Promise<void>((resolve) => {
        onAbort = resolve;
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

export async function notifyAccount(
  ctx: NotifyContext,
  row: ClaimedRow,
  signal: AbortSignal,
  fellBackBefore = false,
): Promise<Outcome> {
  const base = { accountId: row.accountId, fellBack: fellBackBefore };
  if (row.status === null) return { ...base, state: 'skipped', errorCode: 'account_deleted' };
  if (row.status === 'closed' || row.status === 'deleted')
    return { ...base, state: 'skipped', errorCode: `account_${row.status}` };

  const choice = chooseChannel(row, ctx.policy, fellBackBefore);
  if ('unreachable' in choice) return { ...base, state: 'unreachable', errorCode: choice.unreachable };

  if (choice.channel === 'email') return emailOutcome(ctx, row, await sendEmail(ctx, row, signal), fellBackBefore);

  const sms = await sendSms(ctx, row, signal);
  if (sms.ok) return { ...base, state: 'sent', channel: 'sms', messageId: sms.id };
  if (sms.kind === 'not_sent') return { ...base, state: 'pending' };
  if (sms.kind === 'ambiguous')
    return { ...base, state: 'ambiguous', channel: 'sms', errorCode: sms.code, nextLookupMs: ctx.holdMs };
  if (sms.kind === 'failed') return { ...base, state: 'failed', channel: 'sms', errorCode: sms.code };

  const fallback = chooseChannel(row, ctx.policy, true);
  if ('unreachable' in fallback) return { ...base, state: 'failed', channel: 'sms', errorCode: sms.code };
  const mail = await sendEmail(ctx, row, signal);
  // Not sent by email (stopped): the SMS was refused for good, so the row goes back in line and
  // its next attempt goes straight to email.
  if (!mail.ok && mail.kind === 'not_sent') return { ...base, fellBack: true, state: 'pending' };
  const out = emailOutcome(ctx, row, mail, true);
  return out.state === 'sent' ? { ...out, errorCode: sms.code } : out;
}

function emailOutcome(ctx: NotifyContext, row: ClaimedRow, r: SendResult, fellBack: boolean): Outcome {
  const base = { accountId: row.accountId, fellBack, channel: 'email' as const };
  if (r.ok) return { ...base, state: 'sent', messageId: r.id };
  if (r.kind === 'not_sent') return { accountId: row.accountId, fellBack, state: 'pending' };
  // SMTP offers no lookup: the run's --ambiguous policy decides (resend or hold), never silently.
  if (r.kind === 'ambiguous') return { ...base, state: 'ambiguous', errorCode: r.code, nextLookupMs: 0 };
  return { ...base, state: 'failed', errorCode: r.code };
}

export async function sendSms(ctx: NotifyContext, row: ClaimedRow, signal: AbortSignal): Promise<SendResult> {
  const body = smsText(ctx.message, row.ref);
  const statusCallback = ctx.statusCallbackBase
    ? statusCallbackUrl(ctx.statusCallbackBase, ctx.runId, row.ref)
    : undefined;
  const tries = { throttled: 0, failures: 0 };
  for (;;) {
    await ctx.gate.take({ channel: 'sms', signal });
    // Checked right before the call: a stopped, zombie or lease-expired attempt never sends.
    if (mustStop(ctx, signal)) return { ok: false, kind: 'not_sent', code: 'stopped' };
    const started = ctx.clock.now();
    try {
      const sent = await ctx.sms.send({
        to: row.phone!,
        body,
        ...(statusCallback ? { statusCallback } : {}),
        ...smsSender(ctx.message),
      });
      ctx.onSend({ channel: 'sms', result: 'ok', latencyMs: ctx.clock.now().getTime() - started.getTime() });
      return { ok: true, id: sent.sid };
    } catch (err) {
      // An error nobody can classify came after the request may have left: park it.
      const f = classifySafely(ctx.sms, err);
      ctx.onSend({
        channel: 'sms',
        result: f.kind,
        code: f.code,
        latencyMs: ctx.clock.now().getTime() - started.getTime(),
      });
      // Revoked credentials or a bad sender say nothing about this customer: stop the batch (the
      // run pauses) instead of marking every customer failed.
      if (isSmsConfigError(f)) throw new ProviderConfigError('sms', f.code);
      if (f.kind === 'permanent') return { ok: false, kind: 'permanent', code: f.code };
      // May have been processed (timeout, dropped connection, 5xx): park it; lookups decide.
      if (f.kind === 'ambiguous') return { ok: false, kind: 'ambiguous', code: f.code };
      const r = await retryOrGiveUp(ctx, 'sms', f, tries, signal);
      if (r) return r;
    }
  }
}

/** The run's frozen SMS sender, when the run's creator knew it. */
function smsSender(m: MessageConfig): { sender?: { from?: string; messagingServiceSid?: string } } {
  if (m.smsMessagingServiceSid) return { sender: { messagingServiceSid: m.smsMessagingServiceSid } };
  if (m.smsFrom) return { sender: { from: m.smsFrom } };
  return {};
}

function classifySafely(provider: { classify(err: unknown): ClassifiedFailure }, err: unknown): ClassifiedFailure {
  try {
    return provider.classify(err);
  } catch {
    return { kind: 'ambiguous', code: 'unclassified' };
  }
}

/** Waits before a safe retry, or says why not: the result ends the send. */
async function retryOrGiveUp(
  ctx: NotifyContext,
  channel: 'sms' | 'email',
  f: ClassifiedFailure,
  tries: { throttled: number; failures: number },
  signal: AbortSignal,
): Promise<SendResult | undefined> {
  if (f.kind === 'rate_limited') {
    if (++tries.throttled >= THROTTLE_BACKOFF.maxAttempts) return { ok: false, kind: 'failed', code: f.code };
    const wait = backoffMs(THROTTLE_BACKOFF, tries.throttled, ctx.random);
    await ctx.gate.penalize(Math.min(wait, 250), channel);
    await pause(ctx, wait, signal);
    return undefined;
  }
  // 'transient': the request never left (connection refused...), so a retry cannot duplicate.
  if (++tries.failures >= TRANSIENT_BACKOFF.maxAttempts) return { ok: false, kind: 'failed', code: f.code };
  await pause(ctx, backoffMs(TRANSIENT_BACKOFF, tries.failures, ctx.random), signal);
  return undefined;
}

export async function sendEmail(ctx: NotifyContext, row: ClaimedRow, signal: AbortSignal): Promise<SendResult> {
  // The same Message-ID on every attempt: a receiving system that does deduplicate can.
  const messageId = emailMessageId(ctx.runId, row.accountId, ctx.message.messageIdDomain);
  const tries = { throttled: 0, failures: 0 };
  for (;;) {
    await ctx.gate.take({ channel: 'email', signal });
    if (mustStop(ctx, signal)) return { ok: false, kind: 'not_sent', code: 'stopped' };
    const started = ctx.clock.now();
    try {
      await ctx.email.send({
        to: row.email!,
        messageId,
        subject: emailSubject(ctx.message),
        text: emailText(ctx.message, row.ref),
        ...(ctx.message.emailFrom ? { from: ctx.message.emailFrom } : {}),
      });
      ctx.onSend({ channel: 'email', result: 'ok', latencyMs: ctx.clock.now().getTime() - started.getTime() });
      return { ok: true, id: messageId };
    } catch (err) {
      const f = classifySafely(ctx.email, err);
      ctx.onSend({
        channel: 'email',
        result: f.kind,
        code: f.code,
        latencyMs: ctx.clock.now().getTime() - started.getTime(),
      });
      if (isEmailConfigError(f)) throw new ProviderConfigError('email', f.code);
      if (f.kind === 'permanent') return { ok: false, kind: 'permanent', code: f.code };
      if (f.kind === 'ambiguous') return { ok: false, kind: 'ambiguous', code: f.code };
      const r = await retryOrGiveUp(ctx, 'email', f, tries, signal);
      if (r) return r;
    }
  }
}
