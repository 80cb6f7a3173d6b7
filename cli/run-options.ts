// The run options shared by `plan`, `start` and `redrive`, turned into run parameters and checked
// with the same paramProblems the workflow's callers use.
import { DEFAULT_PARAMS, paramProblems, type DeliveryParams, type RunParams } from '../domain/run';
import type { ChannelPolicy } from '../domain/types';
import { UsageError } from '../run-api/errors';

export interface RunOptionValues {
  batchSize?: number;
  concurrency?: number;
  rate?: number;
  policy?: ChannelPolicy;
  canary?: number;
  autoPauseRate?: number;
  autoPauseWindow?: number;
  ambiguous?: 'resend' | 'hold';
  hold?: number;
  notifyOnly?: boolean;
  resetAgain?: boolean;
  dbStallPause?: number;
  receiptDeadline?: number;
  retryAfter?: number;
  filteredPauseRate?: number;
}

/** Only the options given: the rest stays with the defaults (start) or the source run (redrive). */
export function paramsFromOptions(o: RunOptionValues): Partial<RunParams> {
  const p: Partial<RunParams> = {};
  if (o.batchSize !== undefined) p.batchSize = o.batchSize;
  if (o.concurrency !== undefined) p.batchConcurrency = o.concurrency;
  if (o.rate !== undefined) p.ratePerSecond = o.rate;
  if (o.policy !== undefined) p.policy = o.policy;
  if (o.canary !== undefined) p.canary = o.canary;
  if (o.autoPauseRate !== undefined) p.autoPauseFailureRate = o.autoPauseRate;
  if (o.autoPauseWindow !== undefined) p.autoPauseWindow = o.autoPauseWindow;
  if (o.ambiguous !== undefined) p.ambiguous = o.ambiguous;
  if (o.hold !== undefined) {
    p.holdMs = Math.round(o.hold * 1000);
    // The takeover grace keeps its margin over the hold: the provider timeout (10 s).
    p.graceMs = p.holdMs + 10_000;
  }
  if (o.notifyOnly && o.resetAgain) throw new UsageError('--notify-only and --reset-again exclude each other');
  if (o.notifyOnly) p.resetMode = 'notify_only';
  if (o.resetAgain) p.resetMode = 'reset_again';
  if (o.dbStallPause !== undefined) p.dbStallPauseSeconds = o.dbStallPause;
  const delivery: Partial<DeliveryParams> = {};
  if (o.receiptDeadline !== undefined) delivery.deadlineSeconds = o.receiptDeadline;
  if (o.retryAfter !== undefined) delivery.retryAfterSeconds = o.retryAfter;
  if (o.filteredPauseRate !== undefined) delivery.filteredPauseRate = o.filteredPauseRate;
  if (Object.keys(delivery).length) p.delivery = delivery;
  return p;
}

/** Full parameters over the defaults; UsageError naming every problem. */
export function checkedParams(partial: Partial<RunParams>, base: RunParams = DEFAULT_PARAMS): RunParams {
  const params = { ...base, ...partial };
  const problems = paramProblems(params);
  if (problems.length) throw new UsageError(problems.join('; '));
  return params;
}

/** --reason: required to start anything, at most 200 characters (the limit startRun applies). */
export function checkReason(reason: string | undefined): string {
  const r = reason?.trim();
  if (!r) throw new UsageError('--reason is required: the incident or ticket id, recorded on every reset account');
  if (r.length > 200) throw new UsageError('--reason must be at most 200 characters');
  return r;
}
