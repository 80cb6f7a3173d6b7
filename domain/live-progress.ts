// Live progress of a run as the ledger has it: counts by outcome, the send rate achieved over
// the last minute, an ETA from that rate, accounts in flight and a stall warning. Pure (the
// workflow, the CLI and the worker's metrics all compute the same figures from one reading).
import type { Counts } from './types';

/** One reading of the ledger (db/sql/read-live-progress.ts). Times are epoch ms, database clock. */
export interface LiveReading {
  counts: Counts;
  /** Accounts claimed by a send attempt and not settled yet (ledger 'sending'). */
  inFlight: number;
  /** Messages accepted by a provider within the rate window before readAtMs. */
  sentInWindow: number;
  /** Length of that window, seconds: 60, or less while the run's first send is younger than that. */
  windowS: number;
  /** Latest provider call seen in the ledger (a send accepted, or an attempt claimed). */
  lastActivityAtMs?: number;
  readAtMs: number;
  /** Most frequent error codes of settled accounts, by outcome. */
  topErrors: ErrorCount[];
}

export interface ErrorCount {
  /** Ledger outcome: failed, unreachable, skipped, or sent (fell back to email after this SMS code). */
  outcome: string;
  code: string;
  count: number;
}

/**
 * A reading the workflow saved this recently is reused by `status` and the metrics; older, the
 * ledger is read again. The workflow reads every 5 s, and up to every ~20 s for a very large run
 * (checkpoints.ts: readings take at most a tenth of the time), so this spans one reading with room.
 */
export const FRESH_READING_MS = 30_000;

/** The rate window: "the last minute". */
export const RATE_WINDOW_S = 60;
/**
 * No rate (and so no ETA) from less than this much sending: the first seconds mix claims ahead of
 * sends (bench/eta-drill.ts at 100 msg/s: +109% at 10 s of sending, +34% at 15 s, +8% at 30 s).
 */
export const MIN_WINDOW_S = 30;
/** A run is stalled after this long without a provider call while work remains (or 5 messages' time at its ceiling, if longer). */
export const STALL_AFTER_S = 60;

export function settledOf(c: Counts): number {
  return Math.max(0, c.planned - c.pending);
}

/** Messages accepted per second over the window; undefined before there is enough to judge. */
export function achievedRate(r: LiveReading): number | undefined {
  if (r.windowS < MIN_WINDOW_S) return undefined;
  return r.sentInWindow / r.windowS;
}

/**
 * Seconds until every pending account is settled at the achieved rate. Accounts that need no
 * message (unreachable, closed since) settle at once, so only the share of pending accounts that
 * will need one counts, as seen among those settled so far. Undefined while the run cannot move
 * (blocked: paused, awaiting approval, cancelling) or before a rate is known.
 */
export function etaSeconds(r: LiveReading, blocked: boolean): number | undefined {
  const c = r.counts;
  // Nothing planned yet: the cohort is being materialized, not finished.
  if (c.planned === 0) return undefined;
  if (c.pending === 0) return 0;
  const rate = achievedRate(r);
  if (blocked || rate === undefined || rate <= 0) return undefined;
  const sent = c.sentSms + c.sentEmail;
  const settledNotify = sent + c.failed + c.unreachable + c.notifySkipped;
  // A failed account took provider calls too, but only sent ones are in the rate: scale both.
  const messageShare = settledNotify > 0 ? (sent + c.failed) / settledNotify : 1;
  const attemptRate = sent > 0 ? rate * ((sent + c.failed) / sent) : rate;
  return (c.pending * messageShare) / attemptRate;
}

/** Seconds since the last provider call, if any was seen. */
export function idleSeconds(r: LiveReading): number | undefined {
  return r.lastActivityAtMs === undefined ? undefined : Math.max(0, (r.readAtMs - r.lastActivityAtMs) / 1000);
}

/**
 * A stall: work remains, the run is meant to be sending (not paused, not waiting for approval,
 * not finished), and no provider call was seen for STALL_AFTER_S (or 5 messages' time at a very
 * low ceiling). `sinceMs`: when sending was last (re)opened (start, resume, approval), so a run
 * that just resumed is not called stalled for the pause before.
 */
export function stallSeconds(
  r: LiveReading,
  o: { sending: boolean; ratePerSecond: number; sinceMs?: number },
): number | undefined {
  if (!o.sending || r.counts.pending === 0) return undefined;
  const threshold = Math.max(STALL_AFTER_S, o.ratePerSecond > 0 ? 5 / o.ratePerSecond : 0);
  const last = Math.max(r.lastActivityAtMs ?? 0, o.sinceMs ?? 0);
  if (last === 0) return undefined;
  const idle = (r.readAtMs - last) / 1000;
  return idle >= threshold ? idle : undefined;
}

const OUTCOME_TEXT: Record<string, string> = {
  sent: 'fell back',
  failed: 'failed',
  unreachable: 'unreachable',
  skipped: 'skipped',
};

/** "21211 failed 15, no_contact unreachable 3": counts only, never customer data. */
export function formatTopErrors(errors: ErrorCount[]): string {
  return errors
    .map((e) => `${e.code} ${OUTCOME_TEXT[e.outcome] ?? e.outcome} ${e.count.toLocaleString('en-US')}`)
    .join(', ');
}
