// What a run would do, before it does it: batch count and notification time at a rate. Pure.
// The channel split it is fed comes from chooseChannel over the real contact data
// (run-api/plan-cohort.ts).

export interface PlanEstimateInput {
  /** Accounts in the cohort (ledger rows): the workflow plans batches over all of them. */
  cohort: number;
  /** Messages to send: accounts reachable by SMS or email. */
  messages: number;
  batchSize: number;
  /** The first N accounts as one batch, then the rest after approval; 0 = no canary. */
  canary: number;
  /** Messages/s for all workers together; 0 or Infinity = no estimate (unlimited). */
  ratePerSecond: number;
}

export interface PlanEstimate {
  batches: number;
  /** Accounts in the canary batch (0 without a canary). */
  canaryAccounts: number;
  /**
   * Seconds to send every message at the rate ceiling: a lower bound, as SMS failures that fall
   * back to email cost a second message. Undefined when the rate is unlimited (the providers and
   * the workers set the pace then).
   */
  notifySeconds?: number;
}

/** Batches the workflow plans: the canary batch, then batches of batchSize over the rest. */
export function batchCount(cohort: number, batchSize: number, canary = 0): number {
  if (cohort <= 0) return 0;
  if (canary > 0) return 1 + Math.ceil(Math.max(0, cohort - canary) / batchSize);
  return Math.ceil(cohort / batchSize);
}

export function estimatePlan(p: PlanEstimateInput): PlanEstimate {
  if (!Number.isInteger(p.batchSize) || p.batchSize < 1)
    throw new RangeError(`batchSize must be a positive integer, got ${p.batchSize}`);
  if (!(p.ratePerSecond >= 0)) throw new RangeError(`ratePerSecond must be >= 0, got ${p.ratePerSecond}`);
  return {
    batches: batchCount(p.cohort, p.batchSize, p.canary),
    canaryAccounts: p.canary > 0 ? Math.min(p.canary, p.cohort) : 0,
    notifySeconds: p.ratePerSecond > 0 && Number.isFinite(p.ratePerSecond) ? p.messages / p.ratePerSecond : undefined,
  };
}

/** "2h 21m 40s", "3m 05s", "42s", "4.2s", "350 ms". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${Math.round(seconds * 10) / 10}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h ${pad(m)}m ${pad(r)}s`;
  if (m > 0) return `${m}m ${pad(r)}s`;
  return `${r}s`;
}
