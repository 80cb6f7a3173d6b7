// What an activity's failure means for the run: stopped by the run itself, a request to pause, a
// database step that kept failing, or a failure that ends the run.
import { RetryState } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import { FAILURE, PAUSE_FAILURE_TYPES } from '../domain/failures';

function applicationCause(err: unknown): wf.ApplicationFailure | undefined {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  return cause instanceof wf.ApplicationFailure ? cause : undefined;
}

/** The batch stopped because the run was paused or cancelled: what it did not send is back in line. */
export function stoppedByRun(err: unknown): boolean {
  return applicationCause(err)?.type === FAILURE.runStopped;
}

/** The activity stopped its batch and asks for the run to pause (see PAUSE_FAILURE_TYPES). */
export function pauseRequest(
  err: unknown,
): { reason: string; details?: { attempts?: number; failed?: number } } | undefined {
  const cause = applicationCause(err);
  if (!cause || !(PAUSE_FAILURE_TYPES as readonly (string | undefined)[]).includes(cause.type ?? undefined))
    return undefined;
  const details =
    cause.type === FAILURE.failureThreshold
      ? (cause.details?.[0] as { attempts?: number; failed?: number })
      : undefined;
  return { reason: `auto-paused: ${cause.message}`, details };
}

/**
 * A database step that kept failing for the run's dbStallPauseSeconds (its schedule-to-close
 * timeout): the reason, with the last error, for pausing the run. Undefined for other failures.
 */
export function dbStallReason(step: string, seconds: number, err: unknown): string | undefined {
  // Out of time either during an attempt (a TimeoutFailure) or between them (the last attempt's
  // failure, with retry state TIMEOUT).
  if (!(err instanceof wf.ActivityFailure)) return undefined;
  if (!(err.cause instanceof wf.TimeoutFailure) && err.retryState !== RetryState.TIMEOUT) return undefined;
  let last: unknown = err.cause;
  while (last instanceof wf.TimeoutFailure && last.cause) last = last.cause;
  const why = last instanceof Error ? last.message : err.message;
  return `auto-paused: database step ${step} kept failing for ${seconds} s (${(why || 'timed out').replace(/\s+/g, ' ').slice(0, 200)}); check PostgreSQL, then resume`;
}

/** One line for a failure, for runs.status_reason (never customer data: messages carry ids and codes). */
export function failureLine(err: unknown): string {
  let e: unknown = err;
  const parts: string[] = [];
  while (e instanceof Error && parts.length < 3) {
    if (e.message) parts.push(e.message.replace(/\s+/g, ' '));
    e = (e as { cause?: unknown }).cause;
  }
  return `workflow failed: ${parts.join(': ') || String(err)}`.slice(0, 500);
}
