// The run workflow's public interface: shared by the workflow, the CLI and tests.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { LiveReading } from '../domain/live-progress';
import type { CohortKind, Rate, RunParams } from '../domain/run';
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

export type Phase =
  | 'preparing'
  | 'canary'
  | 'awaiting_approval'
  | 'resetting'
  | 'notifying'
  | 'confirming_delivery'
  | 'draining'
  | 'completed'
  | 'cancelled'
  | 'failed';

/** Who let the run go on after its canary, and when. */
export interface Approval {
  by: string;
  atMs: number;
}

/** The figures behind an auto-pause: what tripped it, where. */
export interface AutoPauseFigures {
  attempts: number;
  failed: number;
  /** The batch that tripped the guard (its outcomes are in the ledger counts). */
  batch?: BatchRange;
}

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
  /** The latest reading of the ledger (refreshed every few seconds while work is in flight). */
  live?: LiveReading;
  cohort: CohortKind;
  /** Canary size (0 = none) and, once given, the approval. */
  canary: number;
  approval?: Approval;
  autoPause?: AutoPauseFigures;
  /** When sending was last opened (start, resume, approval): a stall is judged from then. */
  sendingSinceMs?: number;
  /** Set once the run is over (completed, cancelled or failed). */
  finishedAtMs?: number;
  /** Why it was cancelled, or why it failed. */
  endReason?: string;
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
  /** Every parked (ambiguous) notification of the run was settled by the final reconciliation. */
  parkedSettled?: boolean;
  /** Sequence of control writes (pause, resume, cancel) to runs.status. */
  controlSeq?: number;
  live?: LiveReading;
  approval?: Approval;
  autoPause?: AutoPauseFigures;
  sendingSinceMs?: number;
  /** Delivery follow-up: the pause rules judge receipts from here (start, or last resume). */
  deliveryJudgeFromMs?: number;
  /** Every SMS has a final receipt or is past the deadline, after the last send. */
  deliveryDone?: boolean;
  /**
   * Runs started with the 'notify-cursor' patch: notify batches are planned from the ledger after
   * this account id once every PIN is reset, so toNotify holds one page, not every reset batch
   * (8.5M accounts = 4,250 ranges carried through every continue-as-new). Undefined: the old way.
   */
  notifyCursor?: number;
  notifyPlanningDone?: boolean;
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
/**
 * Approve the rest of a run after its canary: an Update, so an approval before the canary is done
 * is refused (validator) and a second approval is answered with the first one (`already`).
 */
export const approveUpdate = defineUpdate<Approval & { already: boolean }, [{ by: string }]>('approve');
export const progressQuery = defineQuery<Progress>('progress');
export const setRateUpdate = defineUpdate<{ previous: Rate; current: Rate }, [Rate]>('setRate');
