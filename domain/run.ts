// Run parameters and their validation: shared by the CLI, the workflow's update validators and
// the activities. Pure: safe to import from workflow code.
import { CHANNEL_POLICIES, type ChannelPolicy } from './types';

export type CohortKind = 'all_active' | 'file' | 'redrive';
export type RunStatus = 'created' | 'running' | 'paused' | 'cancelling' | 'completed' | 'cancelled' | 'failed';

/** A send rate, messages/s, or no ceiling at all. 0 is not a rate: to stop, pause the run. */
export type Rate = number | 'unlimited';
/** The statuses an operator's control (pause, resume, cancel) writes to the run's row. */
export type ControlStatus = Extract<RunStatus, 'running' | 'paused' | 'cancelling'>;
/** The lowest rate accepted (one message every 5 s): lower ones leave every send waiting minutes. */
export const MIN_RATE = 0.2;

/** Rates as PostgreSQL stores them: 'unlimited' is Infinity in a double precision column. */
export function rateToNumber(rate: Rate): number {
  return rate === 'unlimited' ? Infinity : rate;
}
export function rateFromNumber(n: number): Rate {
  return n === Infinity ? 'unlimited' : n;
}
export function formatRate(rate: Rate): string {
  return rate === 'unlimited' ? 'unlimited' : `${rate} msg/s`;
}

export interface RunParams {
  cohort: CohortKind;
  /** Accounts per batch: one reset transaction and one notify activity each. */
  batchSize: number;
  /** Notify batches in flight at once (the sliding window). */
  batchConcurrency: number;
  /** Reset batches in flight at once. */
  resetConcurrency: number;
  /** This run's notification ceiling for all workers together, messages/s, or 'unlimited'. Every
   *  send also takes a slot from its sender's budget, shared by all runs (send_budgets). */
  ratePerSecond: Rate;
  /** Ceiling on PIN resets/s to protect a production database; 0 = unlimited. */
  resetMaxPerSecond: number;
  policy: ChannelPolicy;
  dryRun: boolean;
  /** Process the first N accounts, then wait for an operator's approval; 0 = no canary. */
  canary: number;
  /** Pause the run when more than this share of recent notification attempts failed (0..1; 1 = never). */
  autoPauseFailureRate: number;
  /** How many recent attempts the failure rate is measured over. */
  autoPauseWindow: number;
  /**
   * What happens to a parked (ambiguous) notification that no lookup resolved: 'resend' after two
   * negative lookups a hold period apart, or 'hold' it for a human (reported, never resent).
   */
  ambiguous: AmbiguousPolicy;
  /** How long a claim on accounts lasts before it must be renewed (database clock). */
  leaseMs: number;
  /**
   * Wait between a possible send and a lookup that may count as negative: longer than the
   * provider's list lag (Twilio users report 10-15 minutes and more).
   */
  holdMs: number;
  /**
   * Extra time after a lease ends before another attempt may take its rows over: at least the
   * provider request timeout plus the list lag, so a lookup then sees what the holder sent.
   */
  graceMs: number;
  /**
   * 'reset' (default) refuses accounts already reset for the same incident (same reason);
   * 'notify_only' notifies them without touching PINs; 'reset_again' resets them once more.
   */
  resetMode: ResetMode;
  /**
   * A database step (planning, a reset batch, a checkpoint...) that keeps failing this many
   * seconds pauses the run with the reason, instead of retrying silently. Optional for runs
   * started before it existed (DEFAULT_PARAMS then applies).
   */
  dbStallPauseSeconds?: number;
  /** Delivery follow-up (deadline, 30003 retry delay, filtered-share pause); defaults DEFAULT_DELIVERY. */
  delivery?: Partial<DeliveryParams>;
}

export type AmbiguousPolicy = 'resend' | 'hold';
export type ResetMode = 'reset' | 'notify_only' | 'reset_again';

export const DEFAULT_PARAMS: RunParams = {
  cohort: 'all_active',
  // Each batch costs two activities (reset, notify) and their workflow tasks: at 2,000 a run of
  // 850,000 accounts needs ~0.002 Temporal actions per account (BENCHMARKS.md).
  batchSize: 2000,
  batchConcurrency: 8,
  resetConcurrency: 4,
  ratePerSecond: 100,
  resetMaxPerSecond: 0,
  policy: 'sms_then_email',
  dryRun: false,
  canary: 0,
  autoPauseFailureRate: 0.05,
  autoPauseWindow: 1000,
  ambiguous: 'resend',
  leaseMs: 30_000,
  holdMs: 16 * 60_000,
  graceMs: 16 * 60_000 + 10_000,
  resetMode: 'reset',
  dbStallPauseSeconds: 300,
};

export const LIMITS = {
  batchSize: { min: 1, max: 10_000 },
  batchConcurrency: { min: 1, max: 200 },
  resetConcurrency: { min: 1, max: 64 },
  ratePerSecond: { min: MIN_RATE, max: 100_000 },
  resetMaxPerSecond: { min: 0, max: 10_000_000 },
  canary: { min: 0, max: 1_000_000 },
  autoPauseFailureRate: { min: 0, max: 1 },
  autoPauseWindow: { min: 10, max: 1_000_000 },
  leaseMs: { min: 2_000, max: 600_000 },
  holdMs: { min: 1_000, max: 24 * 3_600_000 },
  graceMs: { min: 1_000, max: 24 * 3_600_000 },
  dbStallPauseSeconds: { min: 2, max: 86_400 },
  // Delivery follow-up (DeliveryParams): the deadline up to Twilio's 10-h queue bound with a margin, a retry within a day.
  deadlineSeconds: { min: 1, max: 48 * 3_600 },
  retryAfterSeconds: { min: 1, max: 24 * 3_600 },
  filteredPauseRate: { min: 0, max: 1 },
} as const;

function checkNumber(problems: string[], name: keyof typeof LIMITS, value: unknown, integer: boolean): void {
  const { min, max } = LIMITS[name];
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    (integer && !Number.isInteger(value)) ||
    value < min ||
    value > max
  ) {
    problems.push(
      `${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
}

/** Problems with a rate value, as messages; empty when valid. */
export function rateProblems(rate: unknown): string[] {
  if (rate === 'unlimited') return [];
  if (rate === 0)
    return [`a rate of 0 is not accepted: to stop sending, pause the run; for no ceiling, use 'unlimited'`];
  if (typeof rate === 'number' && Number.isFinite(rate) && rate > 0 && rate < MIN_RATE) {
    return [
      `ratePerSecond must be at least ${MIN_RATE} messages/s (one every ${1 / MIN_RATE} s), got ${rate}: below it every send waits minutes; to stop sending, pause the run`,
    ];
  }
  const problems: string[] = [];
  checkNumber(problems, 'ratePerSecond', rate, false);
  if (problems.length) problems[0] += ` (or 'unlimited')`;
  return problems;
}

/** Problems with run parameters, each naming the parameter; empty when valid. */
export function paramProblems(p: RunParams): string[] {
  const problems: string[] = [];
  checkNumber(problems, 'batchSize', p.batchSize, true);
  checkNumber(problems, 'batchConcurrency', p.batchConcurrency, true);
  checkNumber(problems, 'resetConcurrency', p.resetConcurrency, true);
  problems.push(...rateProblems(p.ratePerSecond));
  checkNumber(problems, 'resetMaxPerSecond', p.resetMaxPerSecond, false);
  checkNumber(problems, 'canary', p.canary, true);
  checkNumber(problems, 'autoPauseFailureRate', p.autoPauseFailureRate, false);
  checkNumber(problems, 'autoPauseWindow', p.autoPauseWindow, true);
  checkNumber(problems, 'leaseMs', p.leaseMs, true);
  checkNumber(problems, 'holdMs', p.holdMs, true);
  checkNumber(problems, 'graceMs', p.graceMs, true);
  if (!['resend', 'hold'].includes(p.ambiguous))
    problems.push(`ambiguous must be resend or hold, got ${JSON.stringify(p.ambiguous)}`);
  if (!['reset', 'notify_only', 'reset_again'].includes(p.resetMode)) {
    problems.push(`resetMode must be reset, notify_only or reset_again, got ${JSON.stringify(p.resetMode)}`);
  }
  if (p.dbStallPauseSeconds !== undefined) checkNumber(problems, 'dbStallPauseSeconds', p.dbStallPauseSeconds, false);
  if (p.delivery !== undefined) {
    if (typeof p.delivery !== 'object' || p.delivery === null) problems.push('delivery must be an object');
    else
      for (const k of ['deadlineSeconds', 'retryAfterSeconds', 'filteredPauseRate'] as const)
        if (p.delivery[k] !== undefined) checkNumber(problems, k, p.delivery[k], false);
  }
  if (!CHANNEL_POLICIES.includes(p.policy))
    problems.push(`policy must be one of ${CHANNEL_POLICIES.join(', ')}, got ${JSON.stringify(p.policy)}`);
  if (!['all_active', 'file', 'redrive'].includes(p.cohort))
    problems.push(`cohort must be all_active, file or redrive`);
  return problems;
}

/** Run ids become workflow ids: keep them to a safe, documented alphabet. */
export const RUN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{2,62}$/;

export function workflowIdForRun(runId: string): string {
  return `pinreset-run-${runId}`;
}

/**
 * Failure-rate guard over a sliding window of recent notification attempts: a bad template or
 * revoked credentials must not burn through the whole cohort. Pure; used by the workflow (across
 * batches) and by the notify activity (within a batch).
 */
export interface AttemptSample {
  attempts: number;
  failed: number;
}

/** Keeps the newest samples covering at least `window` attempts; returns the trimmed list. */
export function trimWindow(samples: AttemptSample[], window: number): AttemptSample[] {
  let total = 0;
  let keep = samples.length;
  while (keep > 0 && total < window) total += samples[--keep].attempts;
  return samples.slice(keep);
}

/** The failure share of a window, or undefined when it holds too few attempts to judge. */
export function failureRate(samples: AttemptSample[], minAttempts: number): number | undefined {
  const attempts = samples.reduce((n, s) => n + s.attempts, 0);
  if (attempts < minAttempts) return undefined;
  return samples.reduce((n, s) => n + s.failed, 0) / attempts;
}

/** Claim parameters of a run, with defaults for runs created before they existed. */
export function claimTiming(p: Partial<RunParams>): {
  leaseMs: number;
  holdMs: number;
  graceMs: number;
  ambiguous: AmbiguousPolicy;
} {
  return {
    leaseMs: p.leaseMs ?? DEFAULT_PARAMS.leaseMs,
    holdMs: p.holdMs ?? DEFAULT_PARAMS.holdMs,
    graceMs: p.graceMs ?? DEFAULT_PARAMS.graceMs,
    ambiguous: p.ambiguous ?? DEFAULT_PARAMS.ambiguous,
  };
}
/** Delivery follow-up settings (issue 11); optional so runs started before it keep working. */
export interface DeliveryParams {
  /** SMS without a final status callback this long after sending are recorded `unknown`. */
  deadlineSeconds: number;
  /** A 30003 (handset unreachable) is sent again once, this long after the receipt. */
  retryAfterSeconds: number;
  /** Pause when more than this share of recent final receipts were filtered (30007/30034). */
  filteredPauseRate: number;
}

export const DEFAULT_DELIVERY: DeliveryParams = {
  deadlineSeconds: 900,
  retryAfterSeconds: 300,
  filteredPauseRate: 0.05,
};
