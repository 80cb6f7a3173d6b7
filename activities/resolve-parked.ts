// Settles one parked (ambiguous) notification, in this order: a status callback that carried the
// row's reference (the receiver stores it, callbacks/); the message SID if one is known
// (fetch by SID, the dependable read); else, once the hold period has passed, a list by `To` from
// the attempt's GMT day, every page, matched on the row's reference alone (never the whole body:
// link shortening and template changes alter it). Only two negative lookups a hold period apart
// allow a resend, and only under the run's 'resend' policy; 'hold' keeps the row for a human.
// A failing lookup postpones the row; it never fails the batch. Email has no lookup (SMTP offers
// none): the policy decides at once.
import type { ParkedRow } from '../db/sql/claim-due-ambiguous';
import { settleAmbiguous, type AmbiguousVerdict } from '../db/sql/settle-ambiguous';
import type { Db } from '../db/pool';
import { receiptsByRef } from '../db/sql/delivery-actions';
import type { AmbiguousPolicy } from '../domain/run';
import { chooseChannel } from '../domain/channel';
import { referenceIn } from '../domain/templates';
import type { NotifyContext } from './notify-account';

/** Lookups that fail (429, 5xx, network) are tried again after this long, growing. */
const POSTPONE_MS = [5_000, 15_000, 60_000] as const;
/** The attempt's GMT day may have started before it: list from this much earlier. */
const DAY_MARGIN_MS = 3_600_000;

export type ParkedVerdict = AmbiguousVerdict['verdict'];

export async function lookUpParked(
  db: Db,
  ctx: NotifyContext,
  row: ParkedRow,
  policy: AmbiguousPolicy,
  postponed: number,
): Promise<AmbiguousVerdict> {
  // A row taken over from a dead holder has no channel recorded: the one its holder would have
  // chosen is the one to look up.
  const choice = chooseChannel(row, ctx.policy, row.fellBack);
  const channel = row.channel ?? ('channel' in choice ? choice.channel : null);
  if (channel !== 'sms')
    return policy === 'resend' ? { verdict: 'resend', leaseMs: ctx.lease.leaseMs } : { verdict: 'held' };
  try {
    // A status callback that carried this row's reference: the send reached Twilio after all.
    const [receipt] = await receiptsByRef(db, ctx.runId, [row.ref]);
    if (receipt) return { verdict: 'found', messageId: receipt.messageSid, resolvedBy: 'callback' };
    if (row.providerMessageId) {
      await ctx.gate.take({ channel: 'sms' });
      const t0 = ctx.clock.now().getTime();
      const m = await ctx.sms.fetch(row.providerMessageId);
      ctx.onSend({
        channel: 'sms',
        result: 'reconciled',
        code: m ? 'found_sid' : 'sid_unknown',
        latencyMs: ctx.clock.now().getTime() - t0,
      });
      if (m) return { verdict: 'found', messageId: m.sid, resolvedBy: 'sid' };
    }
    if (!row.phone)
      return policy === 'resend' ? { verdict: 'resend', leaseMs: ctx.lease.leaseMs } : { verdict: 'held' };
    await ctx.gate.take({ channel: 'sms' });
    const t0 = ctx.clock.now().getTime();
    const listed = await ctx.sms.listToSince(row.phone, new Date(row.ambiguousSince.getTime() - DAY_MARGIN_MS));
    const match = listed.find((m) => referenceIn(m.body) === row.ref);
    ctx.onSend({
      channel: 'sms',
      result: 'reconciled',
      code: match ? 'found_list' : 'not_found',
      latencyMs: ctx.clock.now().getTime() - t0,
    });
    if (match) return { verdict: 'found', messageId: match.sid, resolvedBy: 'list' };
  } catch {
    return { verdict: 'postpone', nextMs: POSTPONE_MS[Math.min(postponed, POSTPONE_MS.length - 1)] };
  }
  if (row.negativeLookups + 1 < 2) return { verdict: 'negative', nextMs: ctx.holdMs };
  return policy === 'resend' ? { verdict: 'resend', leaseMs: ctx.lease.leaseMs } : { verdict: 'held' };
}

/** Writes the verdict; false when this attempt lost the row meanwhile. */
export function settle(db: Db, ctx: NotifyContext, row: ParkedRow, v: AmbiguousVerdict): Promise<boolean> {
  return settleAmbiguous(db, ctx.runId, ctx.lease.token, row.accountId, v);
}
