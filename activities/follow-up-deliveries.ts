// One sweep of the delivery follow-up of a run (issue 11): fold the receipts the callback receiver
// stored into the ledger, act on bad outcomes, record `unknown` past the deadline, and tell the
// workflow whether the run must pause and whether anything is still awaited.
//
//   undelivered 30005/30006          -> email where there is one, else unreachable with the code
//   30003 (and 30001)                -> the SMS once more, retryAfterSeconds later; then as 30005
//   30007/30034 (filtered)           -> email as above, and counted toward the filtered-share pause
//   30001 (sender queue overflow)    -> the run pauses: its rate is above the sender's throughput
//   no final receipt by the deadline -> the message fetched by SID once (through the send gate:
//                                       a fetch counts in the sender's budget); a final status
//                                       Twilio gives is recorded as a receipt, else 'unknown'
//
// Idempotent: every decision is recorded only if the row is still as read (a zombie twin of this
// activity changes nothing), the email carries the account's deterministic Message-ID (a resend
// is one message to mail stores), and a retry claimed by an attempt that died is reconciled
// against Twilio's list before it is sent again.
import pLimit from 'p-limit';
import { chooseChannel } from '../domain/channel';
import {
  actionFor,
  deliveryPauseReason,
  DEFAULT_DELIVERY_GUARD,
  FINAL_RANK,
  statusCallbackUrl,
  statusRank,
  type DeliveryCounts,
  type DeliveryState,
  type StatusCallback,
} from '../domain/delivery';
import { claimTiming, type DeliveryParams, type Rate, type RunParams } from '../domain/run';
import { readRun } from '../db/sql/read-run';
import { emailMessageId, emailSubject, emailText, referenceIn, smsText } from '../domain/templates';
import type { MessageConfig } from '../config';
import type { ChannelPolicy } from '../domain/types';
import {
  adoptLostSend,
  openDeliveries,
  receiptsByRef,
  recordDeliveryAction,
  retriesDue,
  rowsNeedingAction,
  rowsWithoutSid,
  type DeliveryActionRow,
} from '../db/sql/delivery-actions';
import { foldReceipts } from '../db/sql/fold-receipts';
import { markUnknownDeliveries } from '../db/sql/mark-unknown-deliveries';
import { markUnknownChecked } from '../db/sql/mark-unknown-checked';
import { deliveriesPastDeadline } from '../db/sql/deliveries-past-deadline';
import { recordStatusCallbacks } from '../db/sql/record-status-callbacks';
import { readDeliveryCounts } from '../db/sql/read-delivery-counts';
import { recentReceipts } from '../db/sql/recent-receipts';
import { listSenderBudgets } from '../db/sql/send-budget';
import { systemClock, type ActivityDeps } from './deps';
import { whileAlive } from './keepalive';
import { RunStoppingError, SendGate } from './send-gate';

export interface FollowUpInput {
  runId: string;
  policy: ChannelPolicy;
  delivery: DeliveryParams;
  /** Every notification of the run has been attempted: 'done' may be reported. */
  sendsDone: boolean;
  /** Judge the pause rules on receipts from here (the run's start, or its last resume). */
  judgeFromMs: number;
  ratePerSecond: Rate;
}

export interface FollowUpResult {
  /** False when status callbacks are not configured (no PUBLIC_CALLBACK_URL): nothing to follow. */
  enabled: boolean;
  /**
   * Read once the sends are done (and when the run stops). While it sends, the workflow's ledger
   * readings (checkpoints.ts) carry the delivery counts, fresher than a sweep could.
   */
  counts?: DeliveryCounts;
  /** SMS awaiting a final receipt or a retry. */
  open: number;
  /** Nothing more will happen (sends done, nothing open). */
  done: boolean;
  /** Set when the run must pause, saying why. */
  pauseReason?: string;
  actions: {
    fellBack: number;
    unreachable: number;
    retried: number;
    unknown: number;
    adopted: number;
    fetched?: number;
  };
}

/** Rows acted on per sweep, so one sweep stays short. */
const PER_SWEEP = 2_000;
/**
 * Rows acted on at once within a sweep. One at a time, a fallback (slot, claim, SMTP, record) or
 * an SMS retry took 15-25 ms: 40-60 per second, so the ~5% of a large cohort that needs one
 * trailed the sends by minutes (`npm run bench`, 200,000 accounts: 5,500 follow-ups took 180 s).
 * Each row is claimed on its own, so rows worked side by side cannot step on each other; the
 * sender's budget (send gate) still paces the messages.
 */
const AT_ONCE = 32;
/** Messages asked about by SID per sweep (one at a time, each through the send gate). */
const FETCH_PER_SWEEP = 500;

/**
 * Runs `work` over every item, AT_ONCE at a time, and waits for all of them; then rethrows the
 * first failure (a RunStoppingError first: the run was cancelled), so none is left running.
 */
async function eachAtOnce<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  const limit = pLimit(AT_ONCE);
  const results = await Promise.allSettled(items.map((item) => limit(() => work(item))));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length) throw failures.find((e) => e instanceof RunStoppingError) ?? failures[0];
}
/**
 * A retry or fallback claimed this long ago by an attempt that never recorded it is reconciled and
 * redone. The claim is taken after the send slot, right before the send, so this has to outlast
 * one send (the SMS client's 10-s timeout) with a margin, and at least the run's lease plus grace:
 * a sweep frozen (SIGSTOP, GC, VM pause) between its claim and its send sends when it wakes, so a
 * takeover sooner than a batch's would mail twice what a batch claim would not (a fixed 30 s here
 * was shorter than `npm run chaos`'s 40-s freeze).
 */
const STALE_CLAIM_S = 30;

/** Seconds after which a follow-up claim is stale: the longer of STALE_CLAIM_S and the run's lease + grace. */
export function staleClaimSeconds(params: Partial<RunParams>): number {
  const t = claimTiming(params);
  return Math.max(STALE_CLAIM_S, (t.leaseMs + t.graceMs) / 1000);
}
/** Final receipts the filtered share is judged over. */
const RECEIPT_WINDOW = 1000;

export function makeFollowUpDeliveries(deps: ActivityDeps) {
  const clock = deps.clock ?? systemClock;
  const gates = new Map<string, SendGate>();
  const gateFor = (runId: string) => {
    let gate = gates.get(runId);
    if (!gate) gates.set(runId, (gate = new SendGate(deps.db, runId, clock, deps.senders)));
    return gate;
  };

  return async function followUpDeliveries(input: FollowUpInput): Promise<FollowUpResult> {
    return whileAlive(async () => {
      const { db } = deps;
      const { runId } = input;
      // One read of the run: its frozen text (whatever this worker's environment says) and its claim timing.
      const run = await readRun(db, runId);
      const message: MessageConfig = { ...deps.message, ...(run?.message as Partial<MessageConfig> | null) };
      const actions = { fellBack: 0, unreachable: 0, retried: 0, unknown: 0, adopted: 0, fetched: 0 };
      const base = deps.statusCallbackBase;
      if (!base) {
        return { enabled: false, counts: await readDeliveryCounts(db, runId), open: 0, done: true, actions };
      }
      const gate = gateFor(runId);
      const staleSeconds = staleClaimSeconds((run?.params ?? {}) as Partial<RunParams>);

      // 1. Sends whose response was lost: their callback carries the row's reference.
      const lost = await rowsWithoutSid(db, runId, PER_SWEEP);
      if (lost.length) {
        const byRef = new Map(lost.map((r) => [r.ref, r.accountId]));
        for (const found of await receiptsByRef(db, runId, [...byRef.keys()])) {
          if (await adoptLostSend(db, runId, byRef.get(found.ref)!, found.messageSid)) actions.adopted++;
        }
      }

      // 2. Receipts into the ledger.
      await foldReceipts(db, runId);

      // 3. Bad outcomes. A cancelled run sends nothing more (RunStoppingError): report and stop.
      // 5. No final receipt by the deadline: ask Twilio once per message, then 'unknown'.
      try {
        await act();
        await pastDeadline();
      } catch (err) {
        if (!(err instanceof RunStoppingError)) throw err;
        return {
          enabled: true,
          counts: await readDeliveryCounts(db, runId),
          open: await openDeliveries(db, runId),
          done: true,
          actions,
        };
      }

      const recent = await recentReceipts(db, runId, new Date(input.judgeFromMs), RECEIPT_WINDOW);
      // On a 30001 the reason names the sender's shared budget too: a budget above the throughput is the usual cause.
      const senderBudget =
        recent.queueOverflow > 0 && deps.senders
          ? (await listSenderBudgets(db)).find((b) => b.sender === deps.senders!.sms.key)?.rate
          : undefined;
      const pauseReason = deliveryPauseReason(
        recent,
        { ...DEFAULT_DELIVERY_GUARD, filteredRate: input.delivery.filteredPauseRate },
        input.ratePerSecond,
        senderBudget,
      );
      const open = await openDeliveries(db, runId);
      return {
        enabled: true,
        // A pass over every row of the run (~1.4 s at 850,000 on the loaded bench box): not every sweep.
        counts: input.sendsDone ? await readDeliveryCounts(db, runId) : undefined,
        open,
        done: input.sendsDone && open === 0,
        pauseReason,
        actions,
      };

      async function act(): Promise<void> {
        const rows = await rowsNeedingAction(db, runId, PER_SWEEP, staleSeconds);
        await eachAtOnce(rows, actOn);
        // 4. Retries that are due.
        await eachAtOnce(await retriesDue(db, runId, staleSeconds, PER_SWEEP), retrySms);
      }

      async function actOn(row: DeliveryActionRow & { fallbackClaimedAt: Date | null }): Promise<void> {
        const action = actionFor(row.deliveryState as DeliveryState, row.code, row.retried);
        // A fallback claimed by an attempt that died (stale): taken over with its claim time.
        const expect = row.fallbackClaimedAt
          ? { action: 'fallback_sending', messageId: row.messageId, retryAt: row.fallbackClaimedAt }
          : { action: row.retried ? 'sms_retried' : null, messageId: row.messageId };
        if (action.kind === 'retry_sms' || action.kind === 'queue_overflow') {
          const retryAt = new Date(clock.now().getTime() + input.delivery.retryAfterSeconds * 1000);
          if (await recordDeliveryAction(db, runId, row.accountId, expect, { action: 'retry_scheduled', retryAt }))
            actions.retried++;
        } else if (action.kind === 'fallback' || action.kind === 'filtered') {
          const r = await fallBack(row, expect);
          if (r === 'email') actions.fellBack++;
          else if (r === 'unreachable') actions.unreachable++;
        } else {
          // Nothing to do for the customer (e.g. 30008): the outcome stays recorded with its code.
          await recordDeliveryAction(db, runId, row.accountId, expect, { action: 'none' });
        }
      }

      async function pastDeadline(): Promise<void> {
        const due = await deliveriesPastDeadline(db, runId, input.delivery.deadlineSeconds, FETCH_PER_SWEEP);
        const checked: number[] = [];
        const finals: StatusCallback[] = [];
        let complete = true;
        for (const row of due) {
          // A lookup takes a slot of the sender's budget like a send (Twilio counts it against the account too).
          await gate.take({ channel: 'sms' });
          let found;
          try {
            found = await deps.sms.fetch(row.messageSid);
          } catch {
            complete = false; // throttled or down: the rest waits for the next sweep, none is marked unasked
            break;
          }
          actions.fetched++;
          checked.push(row.accountId);
          const rank = found?.status ? statusRank(found.status) : undefined;
          if (found?.status && rank !== undefined && rank >= FINAL_RANK) {
            finals.push({
              messageSid: row.messageSid,
              runId,
              ref: row.ref,
              status: found.status,
              rank,
              errorCode: found.errorCode ?? null,
            });
          }
        }
        if (finals.length) {
          // Recorded as the receipt Twilio never delivered to us, then folded like one.
          await recordStatusCallbacks(db, finals);
          await foldReceipts(db, runId);
        }
        // All asked (fewer than a sweep's worth): the whole run's remainder (rows without a SID too)
        // becomes 'unknown'; otherwise only what was asked, the rest after its fetch next sweep.
        actions.unknown =
          complete && due.length < FETCH_PER_SWEEP
            ? await markUnknownDeliveries(db, runId, input.delivery.deadlineSeconds)
            : await markUnknownChecked(db, runId, checked);
      }

      async function fallBack(
        row: DeliveryActionRow,
        claimFrom: { action: string | null; messageId: string | null; retryAt?: Date },
      ): Promise<'email' | 'unreachable' | 'later'> {
        const choice = chooseChannel(row, input.policy, true);
        if ('unreachable' in choice) {
          const ok = await recordDeliveryAction(db, runId, row.accountId, claimFrom, {
            action: 'unreachable',
            notifyState: 'unreachable',
            errorCode: row.code ?? 'undelivered',
          });
          return ok ? 'unreachable' : 'later';
        }
        const messageId = emailMessageId(runId, row.accountId, message.messageIdDomain);
        await gate.take({ channel: 'email' });
        // Claim before sending (issue 10): a twin sweep, or a zombie of this one on a frozen or cut-off
        // worker, finds the row claimed and sends nothing. A claim left by an attempt that died
        // between the send and its record is taken over once stale (the run's lease + grace) and the mail sent again
        // (SMTP has no lookup; the same Message-ID), the one window left.
        const claimedAt = new Date(clock.now().getTime());
        if (
          !(await recordDeliveryAction(db, runId, row.accountId, claimFrom, {
            action: 'fallback_sending',
            retryAt: claimedAt,
          }))
        )
          return 'later';
        const expect = { action: 'fallback_sending', messageId: row.messageId, retryAt: claimedAt };
        try {
          await deps.email.send({
            to: row.email!,
            messageId,
            subject: emailSubject(message),
            text: emailText(message, row.ref ?? ''),
          });
          deps.onSend?.({ channel: 'email', result: 'ok', latencyMs: 0 });
        } catch (err) {
          const f = deps.email.classify(err);
          deps.onSend?.({ channel: 'email', result: f.kind, code: f.code, latencyMs: 0 });
          if (f.kind !== 'permanent') return 'later'; // the next sweep tries again
          await recordDeliveryAction(db, runId, row.accountId, expect, {
            action: 'fallback_failed',
            notifyState: 'failed',
            errorCode: f.code,
          });
          return 'later';
        }
        const ok = await recordDeliveryAction(db, runId, row.accountId, expect, {
          action: 'fallback_email',
          channel: 'email',
          fellBack: true,
          messageId,
          errorCode: row.code ?? undefined,
        });
        return ok ? 'email' : 'later';
      }

      async function retrySms(
        row: DeliveryActionRow & { claimedAt: Date | null; action: string; retryAt: Date },
      ): Promise<void> {
        if (!row.phone || !row.ref) return;
        const ref = row.ref;
        const body = smsText(message, ref);
        const claimedBefore = row.claimedAt;
        // Every claim names the exact row state it read (action and retry time): of two twins of
        // this sweep, one claims, the other changes nothing and sends nothing.
        let held = { action: row.action, messageId: row.messageId, retryAt: row.retryAt };
        const claim = async (): Promise<boolean> => {
          const at = new Date(clock.now().getTime());
          const ok = await recordDeliveryAction(db, runId, row.accountId, held, {
            action: 'retry_sending',
            retryAt: at,
          });
          if (ok) held = { action: 'retry_sending', messageId: row.messageId, retryAt: at };
          return ok;
        };
        if (claimedBefore) {
          // An attempt died after claiming: did its SMS go out? (List calls count against the budget too.)
          if (!(await claim())) return;
          await gate.take({ channel: 'sms' });
          const earlier = await deps.sms
            .listToSince(row.phone, new Date(claimedBefore.getTime() - 3_600_000))
            .catch(() => []);
          const match = earlier.find((m) => referenceIn(m.body) === ref && m.sid !== row.messageId);
          if (match) {
            await recordDeliveryAction(db, runId, row.accountId, held, {
              action: 'sms_retried',
              messageId: match.sid,
              deliveryState: 'accepted',
              deliveryCode: null,
            });
            return;
          }
        }
        // The slot first, then the claim, then at once the send: a claim never waits for a slot.
        await gate.take({ channel: 'sms' });
        if (!(await claim())) return;
        try {
          const sent = await deps.sms.send({
            to: row.phone,
            body,
            statusCallback: statusCallbackUrl(base!, runId, ref),
          });
          deps.onSend?.({ channel: 'sms', result: 'ok', latencyMs: 0 });
          await recordDeliveryAction(db, runId, row.accountId, held, {
            action: 'sms_retried',
            messageId: sent.sid,
            deliveryState: 'accepted',
            deliveryCode: null,
          });
        } catch (err) {
          const f = deps.sms.classify(err);
          deps.onSend?.({ channel: 'sms', result: f.kind, code: f.code, latencyMs: 0 });
          const claimedRow = held;
          if (f.kind === 'permanent') {
            // The retry itself was refused: fall back as after a second receipt.
            await recordDeliveryAction(db, runId, row.accountId, claimedRow, { action: 'sms_retried' });
          } else if (f.kind === 'rate_limited' || f.kind === 'transient') {
            // Refused before processing: nothing went out; try again in a moment.
            await recordDeliveryAction(db, runId, row.accountId, claimedRow, {
              action: 'retry_scheduled',
              retryAt: new Date(clock.now().getTime() + 2_000),
            });
          }
          // Ambiguous: the claim goes stale and a later sweep reconciles before trying again.
        }
      }
    });
  };
}
