// The run workflow's public interface: shared by the workflow, the CLI and tests.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Rate, RunParams } from '../domain/run';
import type { BatchRange, Counts } from '../domain/types';

export interface RunInput {
  runId: string;
  /** Incident or ticket id: recorded on every reset account and shown in the Web UI. */
  reason: string;
  operator: string;
  params: RunParams;
  /** Set only by continue-as-new. */
  carried?: CarriedState;
}

export type Phase = 'preparing' | 'canary' | 'awaiting_approval' | 'resetting' | 'notifying' | 'confirming_delivery' | 'draining' | 'completed' | 'cancelled';

export interface Progress {
  runId: string;
  phase: Phase;
  counts: Counts;
  paused: boolean;
  pauseReason?: string;
  /** True when the run paused itself (failure rate or provider configuration). */
  autoPaused: boolean;
  cancelRequested: boolean;
  /** Canary done, waiting for `approve`. */
  awaitingApproval: boolean;
  ratePerSecond: Rate;
  batches: { planned: number; reset: number; notified: number; inFlight: number };
  startedAtMs: number;
  /** Time spent paused so far (rates and ETAs leave it out). */
  pausedMs: number;
  resetsDoneAtMs?: number;
  exposureWindowMs?: number;
  continuedAsNew: number;
}

/** State handed over through continue-as-new: ids, ranges and counts only. */
export interface CarriedState {
  planned: number;
  planCursor: number;
  planningDone: boolean;
  toReset: BatchRange[];
  toNotify: BatchRange[];
  batchesPlanned: number;
  batchesReset: number;
  batchesNotified: number;
  counts: Counts;
  paused: boolean;
  pauseReason?: string;
  autoPaused: boolean;
  /** 'pending' until the canary batch is notified, then 'waiting' for approve, then 'approved'. */
  canary: 'none' | 'pending' | 'waiting' | 'approved';
  /** Last account id of the canary batch. */
  canaryLast?: number;
  /** Recent notification attempts, for the auto-pause failure rate. */
  recent: { attempts: number; failed: number }[];
  ratePerSecond: Rate;
  startedAtMs: number;
  pausedTotalMs: number;
  pausedSinceMs?: number;
  resetsDoneAtMs?: number;
  exposureWindowMs?: number;
  checkpointSeq: number;
  continuedAsNew: number;
  /** Delivery follow-up: the pause rules judge receipts from here (start, or last resume). */
  deliveryJudgeFromMs?: number;
  /** Every SMS has a final receipt or is past the deadline, after the last send. */
  deliveryDone?: boolean;
}

export interface RunResult {
  runId: string;
  status: 'completed' | 'cancelled';
  counts: Counts;
  exposureWindowMs?: number;
  wallTimeMs: number;
  continuedAsNew: number;
}

export const pauseSignal = defineSignal<[{ reason?: string }?]>('pause');
export const resumeSignal = defineSignal<[]>('resume');
export const cancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
export const approveSignal = defineSignal<[{ by?: string }?]>('approve');
export const progressQuery = defineQuery<Progress>('progress');
export const setRateUpdate = defineUpdate<{ previous: Rate; current: Rate }, [Rate]>('setRate');
