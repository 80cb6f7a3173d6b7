// The sliding window of batches of one run: dispatching reset and notify batches (and the final
// reconciliation and the delivery follow-up sweeps), tracking what is in flight, and draining it.
import * as wf from '@temporalio/workflow';
import { DEFAULT_DELIVERY } from '../domain/run';
import type { PlannedBatch } from '../domain/types';
import { batchActivities, deliveryActs, WHOLE_RUN } from './activity-stubs';
import { dbStallReason, pauseRequest, stoppedByRun } from './failures';
import type { RunState } from './run-state';

/** A sweep of the receipts at most this often, while notifications go out and after. */
export const FOLLOW_UP_EVERY_MS = 5_000;

export class BatchWindow {
  readonly inFlight = { reset: new Map<string, Promise<void>>(), notify: new Map<string, Promise<void>>() };
  /** Checkpoints, controls and sweeps not tied to a batch: awaited by drain(). */
  readonly background = new Set<Promise<unknown>>();
  /** The first failure that ends the run (thrown by the main loop). */
  failure: unknown;
  /** A batch finished since the last checkpoint. */
  settledSinceCheckpoint = false;
  readonly followUp = { inFlight: false, lastMs: 0, enabled: true };

  constructor(private readonly run: RunState) {}

  private get stallSeconds(): number {
    return this.run.stallSeconds;
  }

  get size(): number {
    return this.inFlight.reset.size + this.inFlight.notify.size;
  }

  busy(): boolean {
    return this.size > 0;
  }

  /** Keeps a background promise until it settles. */
  keep(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private track(kind: 'reset' | 'notify', key: string, p: Promise<void>): void {
    const wrapped = p
      .catch((err) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.settledSinceCheckpoint = true;
        this.inFlight[kind].delete(key);
        this.run.bump();
      });
    this.inFlight[kind].set(key, wrapped);
  }

  dispatchReset(b: PlannedBatch): void {
    const { runId, reason } = this.run.input;
    // Not cancellable: a cancelled run still lets the batches in flight finish cleanly.
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('reset', b, this.stallSeconds).resetBatch({
        runId,
        first: b.first,
        last: b.last,
        size: b.size,
        reason,
      }),
    ).then(
      (c) => this.run.resetDone(b, c),
      (err) => {
        const why = dbStallReason('resetBatch', this.stallSeconds, err);
        if (!why) throw err;
        this.run.carried.toReset.unshift(b); // done again after resume: the reset is idempotent
        this.run.pause(why, 'run');
      },
    );
    this.track('reset', `${b.first}`, p);
  }

  dispatchNotify(b: PlannedBatch): void {
    const { runId, params } = this.run.input;
    const s = this.run.carried;
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('notify', b, this.stallSeconds).notifyBatch({
        runId,
        first: b.first,
        last: b.last,
        policy: params.policy,
        guard: this.run.guard,
      }),
    ).then(
      (c) => this.run.notifyDone(b, c),
      (err) => {
        if (stoppedByRun(err)) {
          s.toNotify.unshift(b);
          return;
        }
        const request = pauseRequest(err);
        if (!request) throw err;
        // The batch stopped itself: what it sent is recorded (the ledger counts show it); the rest goes back in line.
        s.toNotify.unshift(b);
        if (request.details?.attempts !== undefined) {
          s.autoPause = {
            attempts: request.details.attempts,
            failed: request.details.failed ?? 0,
            batch: { first: b.first, last: b.last },
          };
        }
        this.run.pause(request.reason, 'run');
      },
    );
    this.track('notify', `${b.first}`, p);
  }

  /**
   * After the last batch: parked notifications (ambiguous sends, rows of dead holders) are settled
   * over the whole run, waiting out their hold periods, so no batch ever held the window for them.
   */
  dispatchReconcile(): void {
    const { runId, params } = this.run.input;
    const p = wf.CancellationScope.nonCancellable(() =>
      batchActivities('notify', WHOLE_RUN, this.stallSeconds).notifyBatch({
        runId,
        ...WHOLE_RUN,
        policy: params.policy,
        settleParked: true,
      }),
    ).then(
      () => {
        this.run.carried.parkedSettled = true;
      },
      (err) => {
        // Paused or cancelled meanwhile: dispatched again after a resume; a cancel ends the run.
        if (!stoppedByRun(err)) throw err;
      },
    );
    this.track('notify', 'reconcile', p);
  }

  /**
   * Delivery follow-up: sweeps while notifications go out, then a bounded phase after the last
   * send, until every SMS has a final receipt or is past the deadline (the sweep records those
   * 'unknown'). Receipts come minutes after a send, and 30007/30001 must pause the run while it
   * still sends; so sweeps run beside the batches, not only at the end.
   */
  dispatchFollowUp(sendsDone: boolean): void {
    const { runId, params } = this.run.input;
    const s = this.run.carried;
    this.followUp.inFlight = true;
    const p = wf.CancellationScope.nonCancellable(() =>
      deliveryActs.followUpDeliveries({
        runId,
        policy: params.policy,
        delivery: { ...DEFAULT_DELIVERY, ...params.delivery },
        sendsDone,
        judgeFromMs: s.deliveryJudgeFromMs ?? s.startedAtMs,
        ratePerSecond: s.ratePerSecond,
      }),
    )
      .then(
        (r) => {
          if (r.counts) s.counts.delivery = r.counts;
          this.followUp.enabled = r.enabled;
          if (r.done) s.deliveryDone = true;
          if (r.pauseReason && !s.paused) this.run.pause(r.pauseReason, 'run');
        },
        (err) => {
          this.failure ??= err;
        },
      )
      .finally(() => {
        this.followUp.inFlight = false;
        this.followUp.lastMs = Date.now();
        this.run.bump();
      });
    this.keep(p);
  }

  followUpDue(): boolean {
    return !this.followUp.inFlight && Date.now() - this.followUp.lastMs >= FOLLOW_UP_EVERY_MS;
  }

  /** Waits for every batch in flight, then for the background work. */
  async drain(): Promise<void> {
    await wf.condition(() => this.size === 0);
    await Promise.all([...this.background]);
  }
}
