// Backoff for provider retries inside an activity. Pure; randomness is passed in.

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  maxAttempts: number;
}

/** Transient provider errors (5xx after reconciliation, SMTP 4xx, resets). */
export const TRANSIENT_BACKOFF: BackoffPolicy = { baseMs: 200, capMs: 5_000, maxAttempts: 5 };
/** Throttling (429): not processed, always safe to retry; it slows the run rather than failing it. */
export const THROTTLE_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 10_000, maxAttempts: 30 };

/** "Full jitter" exponential backoff: uniform in [0, min(cap, base * 2^attempt)]. */
export function backoffMs(policy: BackoffPolicy, attempt: number, random: () => number): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * ceiling);
}
