// Notifies one account: chooses the channel, sends through the gate, retries what is safe to
// retry, reconciles what may have been sent, and falls back from SMS to email on permanent errors.
import type { ClaimedRow } from '../db/sql/claim-notify-chunk';
import { chooseChannel } from '../domain/channel';
import type { Outcome } from '../domain/outcome';
import { backoffMs, THROTTLE_BACKOFF, TRANSIENT_BACKOFF } from '../domain/retry';
import { emailMessageId, emailSubject, emailText, smsText } from '../domain/templates';
import type { ChannelPolicy, ClassifiedFailure, EmailSender, SmsSender } from '../domain/types';
import type { MessageConfig } from '../config';
import { isSmsConfigError } from '../domain/sms-errors';
import { isEmailConfigError } from '../domain/email-errors';
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
  message: MessageConfig;
  random: () => number;
  ref: (accountId: number) => string;
  onSend: (e: SendEvent) => void;
  /** PUBLIC_CALLBACK_URL, when status callbacks are on. */
  statusCallbackBase?: string;
}

/** The provider refused our account or sender, not the recipient. Carries only the code. */
export class ProviderConfigError extends Error {
  constructor(readonly channel: 'sms' | 'email', readonly code: string) {
    super(`${channel} provider rejected the configuration (${code}): check credentials and sender`);
    this.name = 'ProviderConfigError';
  }
}

type SendResult = { ok: true; id: string } | { ok: false; permanent: boolean; code: string };

/** Clock skew allowed between us and the provider when looking for an earlier send. */
const RECONCILE_SKEW_MS = 5_000;

/** Thrown when this attempt was cancelled or timed out: it must not send anything more. */
function stopIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('notify attempt cancelled');
}

/** Backoff that ends early (throwing) when the attempt is stopped: a stopped attempt must not linger. */
async function pause(ctx: NotifyContext, ms: number, signal: AbortSignal): Promise<void> {
  stopIfCancelled(signal);
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
  stopIfCancelled(signal);
}

export async function notifyAccount(ctx: NotifyContext, row: ClaimedRow, signal: AbortSignal): Promise<Outcome> {
  stopIfCancelled(signal);
  const base = { accountId: row.accountId, fellBack: false };
  if (row.status === null) return { ...base, state: 'skipped', errorCode: 'account_deleted' };
  if (row.status === 'closed' || row.status === 'deleted') return { ...base, state: 'skipped', errorCode: `account_${row.status}` };

  const choice = chooseChannel(row, ctx.policy);
  if ('unreachable' in choice) return { ...base, state: 'unreachable', errorCode: choice.unreachable };

  const ref = ctx.ref(row.accountId);
  if (choice.channel === 'email') {
    const r = await sendEmail(ctx, row.email!, row.accountId, ref, signal);
    return r.ok ? { ...base, state: 'sent', channel: 'email', messageId: r.id } : { ...base, state: 'failed', channel: 'email', errorCode: r.code };
  }

  const sms = await sendSms(ctx, row.phone!, ref, row.wasSending ? row.attemptStartedAt : null, signal);
  if (sms.ok) return { ...base, state: 'sent', channel: 'sms', messageId: sms.id };
  if (!sms.permanent) return { ...base, state: 'failed', channel: 'sms', errorCode: sms.code };

  const fallback = chooseChannel(row, ctx.policy, true);
  if ('unreachable' in fallback) return { ...base, state: 'failed', channel: 'sms', errorCode: sms.code };
  const mail = await sendEmail(ctx, row.email!, row.accountId, ref, signal);
  return mail.ok
    ? { accountId: row.accountId, fellBack: true, state: 'sent', channel: 'email', messageId: mail.id, errorCode: sms.code }
    : { accountId: row.accountId, fellBack: true, state: 'failed', channel: 'email', errorCode: mail.code };
}

async function sendSms(ctx: NotifyContext, to: string, ref: string, ambiguousSince: Date | null, signal: AbortSignal): Promise<SendResult> {
  const body = smsText(ctx.message, ref);
  let throttled = 0;
  let failures = 0;
  let lastCode = '';
  for (;;) {
    if (ambiguousSince) {
      // An earlier attempt may have reached the provider: never send blindly a second time.
      const found = await reconcileSms(ctx, to, body, ambiguousSince);
      if (found) return { ok: true, id: found };
    }
    await ctx.gate.take({ channel: 'sms', signal });
    // A timed-out attempt (a zombie) must never send: its retry may already be sending.
    stopIfCancelled(signal);
    const started = ctx.clock.now();
    try {
      const statusCallback = ctx.statusCallbackBase ? statusCallbackUrl(ctx.statusCallbackBase, ctx.runId, ref) : undefined;
      const sent = await ctx.sms.send({ to, body, statusCallback });
      ctx.onSend({ channel: 'sms', result: 'ok', latencyMs: ctx.clock.now().getTime() - started.getTime() });
      return { ok: true, id: sent.sid };
    } catch (err) {
      const f = ctx.sms.classify(err);
      ctx.onSend({ channel: 'sms', result: f.kind, code: f.code, latencyMs: ctx.clock.now().getTime() - started.getTime() });
      // Revoked credentials or a bad sender say nothing about this customer: fail the attempt
      // (the run stalls visibly and retries) instead of marking every customer failed.
      if (isSmsConfigError(f)) throw new ProviderConfigError('sms', f.code);
      lastCode = f.code;
      if (f.kind === 'permanent') return { ok: false, permanent: true, code: f.code };
      if (f.kind === 'rate_limited') {
        if (++throttled >= THROTTLE_BACKOFF.maxAttempts) return { ok: false, permanent: false, code: f.code };
        const wait = backoffMs(THROTTLE_BACKOFF, throttled, ctx.random);
        await ctx.gate.penalize(Math.min(wait, 250), 'sms');
        await pause(ctx, wait, signal);
        continue;
      }
      if (f.kind === 'ambiguous') ambiguousSince ??= started;
      if (++failures >= TRANSIENT_BACKOFF.maxAttempts) {
        // Out of retries, but an ambiguous attempt may still have gone through: look once more.
        if (ambiguousSince) {
          const found = await reconcileSms(ctx, to, body, ambiguousSince).catch(() => undefined);
          if (found) return { ok: true, id: found };
        }
        return { ok: false, permanent: false, code: lastCode };
      }
      await pause(ctx, backoffMs(TRANSIENT_BACKOFF, failures, ctx.random), signal);
    }
  }
}

async function reconcileSms(ctx: NotifyContext, to: string, body: string, since: Date): Promise<string | undefined> {
  const started = ctx.clock.now();
  const earlier = await ctx.sms.listSentSince(to, new Date(since.getTime() - RECONCILE_SKEW_MS));
  const match = earlier.find((m) => m.body === body);
  ctx.onSend({ channel: 'sms', result: 'reconciled', code: match ? 'found' : 'not_found', latencyMs: ctx.clock.now().getTime() - started.getTime() });
  return match?.sid;
}

async function sendEmail(ctx: NotifyContext, to: string, accountId: number, ref: string, signal: AbortSignal): Promise<SendResult> {
  // The Message-ID is the same on every attempt, so a resend after an ambiguous failure is one
  // message to the recipient's mail store.
  const messageId = emailMessageId(ctx.runId, accountId, ctx.message.messageIdDomain);
  let throttled = 0;
  let failures = 0;
  for (;;) {
    await ctx.gate.take({ channel: 'email', signal });
    stopIfCancelled(signal);
    const started = ctx.clock.now();
    try {
      await ctx.email.send({ to, messageId, subject: emailSubject(ctx.message), text: emailText(ctx.message, ref) });
      ctx.onSend({ channel: 'email', result: 'ok', latencyMs: ctx.clock.now().getTime() - started.getTime() });
      return { ok: true, id: messageId };
    } catch (err) {
      const f: ClassifiedFailure = ctx.email.classify(err);
      ctx.onSend({ channel: 'email', result: f.kind, code: f.code, latencyMs: ctx.clock.now().getTime() - started.getTime() });
      if (isEmailConfigError(f)) throw new ProviderConfigError('email', f.code);
      if (f.kind === 'permanent') return { ok: false, permanent: true, code: f.code };
      if (f.kind === 'rate_limited') {
        if (++throttled >= THROTTLE_BACKOFF.maxAttempts) return { ok: false, permanent: false, code: f.code };
        await pause(ctx, backoffMs(THROTTLE_BACKOFF, throttled, ctx.random), signal);
        continue;
      }
      if (++failures >= TRANSIENT_BACKOFF.maxAttempts) return { ok: false, permanent: false, code: f.code };
      await pause(ctx, backoffMs(TRANSIENT_BACKOFF, failures, ctx.random), signal);
    }
  }
}
