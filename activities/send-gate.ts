// Per-worker, per-run gate in front of every provider call (sends, and the send path's list and
// fetch calls). Each slot comes from two limiters in PostgreSQL at once: the run's own ceiling
// (its share, set-rate) and the budget of the sender it goes through (send_budgets: one per SMS
// From number or Messaging Service SID, one per email relay), which every run and worker shares.
//
// Waits are short and hold nothing: a reservation is only made when usable within MAX_WAIT_MS;
// otherwise the gate sleeps at most that long (ending early when the caller's signal aborts) and
// asks again, re-reading both rates. So a lowered or raised rate applies within a fraction of a
// second, a cancelled attempt stops waiting at once, and no slot is held for minutes.
import type { Db } from '../db/pool';
import { acquireSendBudget, penalizeSender } from '../db/sql/send-budget';
import type { Clock } from './deps';

export type GateChannel = 'sms' | 'email';

/** Who sends, per channel: the budget keys and the default budgets (messages/s; Infinity = unlimited). */
export interface GateSenders {
  sms: { key: string; defaultRate: number };
  email: { key: string; defaultRate: number };
}

/** Without configuration (tests, tools): unlimited budgets; the worker passes SMS_SENDER_RATE / EMAIL_RELAY_RATE. */
export const DEFAULT_SENDERS: GateSenders = {
  sms: { key: 'sms:default', defaultRate: Infinity },
  email: { key: 'email:default', defaultRate: Infinity },
};

/** Budget key of an SMS sender: the Messaging Service when there is one (it pools its numbers). */
export function smsSenderKey(o: { from?: string; messagingServiceSid?: string }): string {
  return `sms:${o.messagingServiceSid ?? o.from ?? 'default'}`;
}

/** Budget key of an email relay: host and port, never the credentials of the URL. */
export function emailRelayKey(smtpUrl: string): string {
  try {
    const u = new URL(smtpUrl);
    return `email:${u.hostname}:${u.port || (u.protocol === 'smtps:' ? '465' : '587')}`;
  } catch {
    return 'email:default';
  }
}

/** Slots per reservation: about 50 ms of traffic, so bursts stay small and the DB sees ~20 calls/s. */
export function blockSize(rate: number): number {
  if (!Number.isFinite(rate)) return 50;
  return Math.max(1, Math.min(50, Math.round(rate / 20)));
}

/** Longest a reservation may lie ahead; longer waits are slept in steps of at most this, holding nothing. */
export const MAX_WAIT_MS = 250;
/** A worker pushes a sender's budget back at most this often. */
const PENALTY_EVERY_MS = 1_000;
/** While both limits are unlimited, look again this often for a new rate. */
const UNLIMITED_RECHECK_MS = 1_000;

/** The run was cancelled: no slot will come. The send path releases the account (not attempted). */
export class RunStoppingError extends Error {
  constructor(readonly runId: string) {
    super(`run ${runId} is stopping (cancelled): no more sends`);
    this.name = 'RunStoppingError';
  }
}

class Lane {
  tokens = 0;
  rate = 1;
  lastBlock = 1;
  unlimitedUntil = 0;
  refilling: Promise<void> | null = null;
  lastPenaltyMs = 0;
  constructor(
    readonly key: string,
    readonly defaultRate: number,
  ) {}
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('send gate wait cancelled');
}

export class SendGate {
  private readonly lanes: Record<GateChannel, Lane>;

  constructor(
    private readonly db: Db,
    private readonly runId: string,
    private readonly clock: Clock,
    senders: GateSenders = DEFAULT_SENDERS,
  ) {
    this.lanes = {
      sms: new Lane(senders.sms.key, senders.sms.defaultRate),
      email: new Lane(senders.email.key, senders.email.defaultRate),
    };
  }

  /**
   * Waits for one slot of this run on the channel's sender (SMS by default). Throws the signal's
   * reason when it aborts while waiting.
   */
  async take(opts: { channel?: GateChannel; signal?: AbortSignal } = {}): Promise<void> {
    const lane = this.lanes[opts.channel ?? 'sms'];
    const signal = opts.signal;
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const now = this.clock.now().getTime();
      if (now < lane.unlimitedUntil) return;
      if (lane.tokens > 0) {
        lane.tokens -= 1;
        // Double buffering: reserve the next block while this one is being spent, so the database
        // round trip overlaps with sending (GCRA makes the early reservation wait for its own slot).
        if (lane.tokens <= lane.lastBlock / 2) this.prefetch(lane);
        return;
      }
      await this.startRefill(lane, signal);
    }
  }

  /**
   * The provider throttled us: the sender's budget withholds a further share of its rate (capped,
   * decaying; see 009_delivery.sql). At most once per second per worker and channel.
   */
  async penalize(_ms?: number, channel: GateChannel = 'sms'): Promise<void> {
    const lane = this.lanes[channel];
    const now = this.clock.now().getTime();
    if (now - lane.lastPenaltyMs < PENALTY_EVERY_MS) return;
    lane.lastPenaltyMs = now;
    await penalizeSender(this.db, lane.key);
  }

  private prefetch(lane: Lane): void {
    this.startRefill(lane).catch(() => undefined);
  }

  /** One reservation at a time per lane; callers share it. */
  private startRefill(lane: Lane, signal?: AbortSignal): Promise<void> {
    lane.refilling ??= this.refill(lane).finally(() => {
      lane.refilling = null;
    });
    if (!signal) return lane.refilling;
    // A caller whose attempt is cancelled stops waiting now; the reservation itself is short.
    return Promise.race([lane.refilling, this.sleep(MAX_WAIT_MS * 4, signal).then(() => lane.refilling ?? undefined)]);
  }

  /** Tries for about a second; a caller still waiting then starts another round (so no loop outlives its callers). */
  private async refill(lane: Lane): Promise<void> {
    for (let round = 0; round < 4; round++) {
      const n = blockSize(lane.rate);
      const r = await acquireSendBudget(this.db, this.runId, lane.key, n, lane.defaultRate, MAX_WAIT_MS);
      if (r.waitMs < 0) throw new RunStoppingError(this.runId);
      lane.rate = Math.min(r.runRate, r.senderRate);
      if (r.granted) {
        if (!Number.isFinite(r.runRate) && !Number.isFinite(r.senderRate)) {
          lane.unlimitedUntil = this.clock.now().getTime() + UNLIMITED_RECHECK_MS;
          return;
        }
        lane.unlimitedUntil = 0;
        if (r.waitMs > 0) await this.clock.sleep(r.waitMs);
        lane.tokens += n;
        lane.lastBlock = n;
        return;
      }
      // Not within reach: sleep a little holding nothing, then ask again with fresh rates.
      await this.clock.sleep(Math.min(MAX_WAIT_MS, Math.max(10, r.waitMs - MAX_WAIT_MS)));
    }
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    return new Promise<void>((resolve, reject) => {
      let onAbort: () => void = () => undefined;
      const done = this.clock.sleep(ms).then(() => signal.removeEventListener('abort', onAbort));
      onAbort = () => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      void done.then(resolve);
    });
  }
}
