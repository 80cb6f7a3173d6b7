// The activities as the run workflow calls them: timeouts and retries per kind of step.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BatchRange } from '../domain/types';

/** Database-only steps: retried until the database answers (an outage stalls, never fails, a run). */
export const DB_RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;

// Heartbeats (activities/keepalive.ts) let a killed worker's activity be retried in seconds, not minutes.
/** Controls, approvals, the run's status and final counts: unbounded, they must land eventually. */
export const lifecycle = wf.proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15s',
  retry: DB_RETRY,
});

/** Delivery follow-up sweeps (issue 11): short, retried like the other database steps. */
export const deliveryActs = wf.proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15s',
  retry: DB_RETRY,
  summary: 'follow up delivery receipts',
});

/** Database-only steps, bounded: one failing for `stallSeconds` pauses the run instead of retrying silently. */
export function boundedDbSteps(stallSeconds: number) {
  return wf.proxyActivities<Activities>({
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '15s',
    scheduleToCloseTimeout: `${stallSeconds}s`,
    retry: DB_RETRY,
  });
}

/** The range of the final reconciliation: the whole run. */
export const WHOLE_RUN: BatchRange = { first: 0, last: Number.MAX_SAFE_INTEGER };

export function batchActivities(kind: 'reset' | 'notify', b: BatchRange, dbStallSeconds: number) {
  // Deterministic ids: the same batch always has the same activity id, in every run of the chain.
  const activityId = `${kind}-${b.first}-${b.last}`;
  return kind === 'reset'
    ? wf.proxyActivities<Activities>({
        activityId,
        startToCloseTimeout: '5 minutes',
        heartbeatTimeout: '15s',
        retry: DB_RETRY,
        summary: `reset PINs of accounts ${b.first}..${b.last}`,
        // A reset is a database step: one that keeps failing pauses the run (dbStallReason).
        scheduleToCloseTimeout: `${dbStallSeconds}s`,
      })
    : wf.proxyActivities<Activities>({
        activityId,
        // Long at low rates; a dead worker is noticed by the heartbeat timeout instead.
        startToCloseTimeout: '4 hours',
        heartbeatTimeout: '15s',
        retry: DB_RETRY,
        summary:
          b.first === WHOLE_RUN.first && b.last === WHOLE_RUN.last
            ? 'settle parked (ambiguous) notifications of the run'
            : `notify accounts ${b.first}..${b.last}`,
      });
}
