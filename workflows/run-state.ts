// The state of one run inside its workflow, and every transition of it: pause (one path, for an
// operator and for the run itself), resume, approve, cancel, the counts shown and the progress
// answered to queries. Side effects are two callbacks: writing a control to runs.status, and the
// phase's search attribute.
import * as wf from '@temporalio/workflow';
import { DEFAULT_PARAMS, failureRate, trimWindow, type ControlStatus, type RunParams } from '../domain/run';
import { zeroCounts, type BatchRange, type Counts } from '../domain/types';
import type { Approval, CarriedState, Phase, Progress, RunInput } from './api';

export interface RunEffects {
  /** Writes pause / resume / cancel to runs.status at once (every worker's send path reads it). */
  recordControl(status: ControlStatus, reason?: string): void;
  /** Shows the phase as the PinresetPhase search attribute. */
  showPhase(phase: Phase): void;
}

export function freshState(params: RunParams, nowMs: number): CarriedState {
  return {
    planned: 0,
    planCursor: 0,
    planningDone: false,
    toReset: [],
    toNotify: [],
    batchesPlanned: 0,
    batchesReset: 0,
    batchesNotified: 0,
    counts: zeroCounts(),
    paused: false,
    autoPaused: false,
    canary: params.canary > 0 ? 'pending' : 'none',
    recent: [],
    ratePerSecond: params.ratePerSecond,
    startedAtMs: nowMs,
    pausedTotalMs: 0,
    checkpointSeq: 0,
    continuedAsNew: 0,
  };
}

/** Accounts whose outcome is settled (reset skipped, or notified one way or another). */
export function settled(c: Counts): number {
  return c.skipped + c.sentSms + c.sentEmail + c.unreachable + c.failed + c.notifySkipped + (c.ambiguous ?? 0);
}

/** Batch outcomes of a notify batch, as the workflow counts them. */
type NotifyCounts = Pick<Counts, 'sentSms' | 'sentEmail' | 'fellBack' | 'unreachable' | 'failed' | 'notifySkipped'> & {
  ambiguous: number;
};

export class RunState {
  /** What continue-as-new hands over. */
  readonly carried: CarriedState;
  phase: Phase;
  cancelRequested = false;
  cancelReason?: string;
  finishedAtMs?: number;
  failedReason?: string;
  /** Set once the run ends: background loops stop. */
  ended = false;
  /** runs.status says 'cancelling' (markRunStopping done). */
  stopMarked = false;
  /** Bumped on every change the main loop waits for. */
  version = 0;
  /** The paused state last shown (search attribute and checkpoint). */
  pausedShown: boolean;

  constructor(
    readonly input: RunInput,
    private readonly effects: RunEffects,
  ) {
    this.carried = input.carried ?? freshState(input.params, Date.now());
    this.phase = input.carried ? (this.carried.resetsDoneAtMs !== undefined ? 'notifying' : 'resetting') : 'preparing';
    this.pausedShown = false;
  }

  get params(): RunParams {
    return this.input.params;
  }

  /** A bounded database step failing for this long pauses the run. */
  get stallSeconds(): number {
    return this.params.dbStallPauseSeconds ?? DEFAULT_PARAMS.dbStallPauseSeconds!;
  }

  bump(): void {
    this.version++;
  }

  /** Cancelled, or over: controls change nothing any more. */
  get closed(): boolean {
    return this.cancelRequested || this.finishedAtMs !== undefined;
  }

  get sending(): boolean {
    return !this.cancelRequested && !this.carried.paused;
  }

  setPhase(next: Phase): void {
    this.phase = next;
    this.effects.showPhase(next);
  }

  /**
   * The one pause path. By an operator: the reason is theirs, runs.status is written again. By the
   * run itself (failure rate, provider setup, a stalled database step): the first reason stands.
   */
  pause(reason: string, by: 'operator' | 'run'): void {
    const s = this.carried;
    if (by === 'run' && s.paused && s.autoPaused) return;
    const record = by === 'operator' ? !this.closed : !s.paused && !this.cancelRequested;
    if (record) this.effects.recordControl('paused', reason);
    s.paused = true;
    s.pausedSinceMs ??= Date.now();
    s.pauseReason = reason;
    if (by === 'run') {
      s.autoPaused = true;
      wf.log.warn('run auto-paused', { runId: this.input.runId, reason });
    } else this.bump();
  }

  /** False when there is nothing to resume (not paused, cancelled or over). */
  resume(): boolean {
    const s = this.carried;
    if (!s.paused || this.closed) return false;
    this.effects.recordControl('running');
    s.sendingSinceMs = Date.now();
    s.paused = false;
    s.pauseReason = undefined;
    s.autoPaused = false;
    if (s.pausedSinceMs !== undefined) s.pausedTotalMs += Date.now() - s.pausedSinceMs;
    s.pausedSinceMs = undefined;
    // The operator has looked at the failures: judge the failure rate afresh from here.
    s.recent = [];
    s.deliveryJudgeFromMs = Date.now();
    this.bump();
    return true;
  }

  cancel(reason: string): void {
    if (this.closed) return;
    this.cancelRequested = true;
    this.cancelReason = reason;
    this.effects.recordControl('cancelling', reason);
    this.bump();
  }

  /** Why an approval is refused now; undefined when it is accepted (or answered with the first one). */
  approvalProblem(): string | undefined {
    if (this.carried.approval) return undefined;
    if (this.closed) return 'the run is cancelled or over: nothing to approve';
    if (this.carried.canary === 'none') return 'this run has no canary: nothing to approve';
    if (this.carried.canary === 'pending') {
      return `the canary is not done yet: the first ${this.params.canary} accounts are still being notified; approve once status says AWAITING APPROVAL`;
    }
    return undefined;
  }

  approve(by: string): Approval {
    const s = this.carried;
    s.approval = { by: by.trim(), atMs: Date.now() };
    s.canary = 'approved';
    s.sendingSinceMs = Date.now();
    this.bump();
    return s.approval;
  }

  /** A batch that belongs to the canary has been notified (or had nothing to notify). */
  canaryBatchDone(b: BatchRange): void {
    if (this.carried.canary === 'pending' && b.last <= this.carried.canaryLast!) this.carried.canary = 'waiting';
  }

  resetDone(b: BatchRange, c: { reset: number; skipped: number }): void {
    const s = this.carried;
    s.counts.reset += c.reset;
    s.counts.skipped += c.skipped;
    s.batchesReset++;
    // Cursor mode: the notify batches are planned from the ledger later; only the canary's is queued here.
    if (s.notifyCursor !== undefined && !(s.canary !== 'none' && b.last <= (s.canaryLast ?? -1))) return;
    if (c.reset > 0) s.toNotify.push(b);
    else {
      s.batchesNotified++;
      // A canary whose accounts were all closed since: nothing to notify, it is done.
      this.canaryBatchDone(b);
    }
  }

  /** Counts a notify batch and judges the failure rate over the recent window (auto-pause). */
  notifyDone(b: BatchRange, c: NotifyCounts): void {
    const s = this.carried;
    const p = this.params;
    s.counts.sentSms += c.sentSms;
    s.counts.sentEmail += c.sentEmail;
    s.counts.fellBack += c.fellBack;
    s.counts.unreachable += c.unreachable;
    s.counts.failed += c.failed;
    s.counts.notifySkipped += c.notifySkipped;
    s.counts.ambiguous = (s.counts.ambiguous ?? 0) + c.ambiguous;
    s.batchesNotified++;
    this.canaryBatchDone(b);
    s.recent = trimWindow(
      [...s.recent, { attempts: c.sentSms + c.sentEmail + c.failed, failed: c.failed }],
      p.autoPauseWindow,
    );
    const rate = failureRate(s.recent, this.guard.minAttempts);
    if (rate !== undefined && p.autoPauseFailureRate < 1 && rate > p.autoPauseFailureRate && !s.paused) {
      const attempts = s.recent.reduce((n, r) => n + r.attempts, 0);
      const failed = s.recent.reduce((n, r) => n + r.failed, 0);
      s.autoPause = { attempts, failed, batch: { first: b.first, last: b.last } };
      this.pause(
        `auto-paused: ${(100 * rate).toFixed(1)}% of the last ${attempts} notification attempts failed (${failed} failed; threshold ${(100 * p.autoPauseFailureRate).toFixed(1)}%)`,
        'run',
      );
    }
  }

  /** The guard every notify batch applies to itself (it stops the batch when tripped). */
  get guard(): { failureRate: number; minAttempts: number } {
    return { failureRate: this.params.autoPauseFailureRate, minAttempts: Math.min(100, this.params.autoPauseWindow) };
  }

  /**
   * The freshest counts: the ledger's latest reading, or the finished batches' totals when those
   * are newer (a batch that just finished). Both only move forward.
   */
  shownCounts(): Counts {
    const s = this.carried;
    const batches = { ...s.counts, pending: Math.max(0, s.counts.planned - settled(s.counts)) };
    const live = s.live?.counts;
    return live && settled(live) + live.reset >= settled(batches) + batches.reset ? live : batches;
  }

  progress(inFlight: number): Progress {
    const s = this.carried;
    return {
      runId: this.input.runId,
      phase: this.phase,
      counts: this.shownCounts(),
      paused: s.paused,
      pauseReason: s.pauseReason,
      autoPaused: s.autoPaused,
      cancelRequested: this.cancelRequested,
      awaitingApproval: s.canary === 'waiting',
      ratePerSecond: s.ratePerSecond,
      batches: { planned: s.batchesPlanned, reset: s.batchesReset, notified: s.batchesNotified, inFlight },
      live: s.live,
      cohort: this.params.cohort,
      canary: this.params.canary,
      approval: s.approval,
      autoPause: s.autoPause,
      sendingSinceMs: s.sendingSinceMs,
      finishedAtMs: this.finishedAtMs,
      endReason: this.failedReason ?? this.cancelReason,
      startedAtMs: s.startedAtMs,
      pausedMs:
        s.pausedTotalMs + (s.pausedSinceMs !== undefined ? (this.finishedAtMs ?? Date.now()) - s.pausedSinceMs : 0),
      resetsDoneAtMs: s.resetsDoneAtMs,
      exposureWindowMs: s.exposureWindowMs,
      continuedAsNew: s.continuedAsNew,
    };
  }
}
