// Readings of the ledger's live progress, saved as checkpoints: every few seconds while batches are
// in flight, and at every turn of the run (paused, canary done, resets done, end). The Web UI's
// current details show the latest reading.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import { lifecycle } from './activity-stubs';
import type { BatchWindow } from './batch-window';
import { dbStallReason } from './failures';
import { progressMarkdown } from './progress-markdown';
import type { RunState } from './run-state';

/**
 * Read the ledger's live progress (and save it as a checkpoint) this often while batches are in
 * flight: counts, rate and ETA then move with the ledger, not per finished batch. Each reading is
 * a timer and an activity (~11 history events), so a long run continues as new about every 30 min.
 */
export const CHECKPOINT_EVERY_MS = 5_000;
/** The largest share of the time the readings may take while batches are in flight (see startTicker). */
const READING_SHARE = 0.1;

export class Checkpoints {
  private lastCheckpointMs = 0;

  constructor(
    private readonly run: RunState,
    private readonly window: BatchWindow,
    private readonly dbSteps: Pick<Activities, 'checkpointProgress'>,
  ) {}

  showDetails(): void {
    wf.setCurrentDetails(progressMarkdown(this.run.progress(this.window.size), Date.now()));
  }

  /** Reads and saves one checkpoint; tracked in the window's background (awaited before the run ends). */
  save(note?: string, final = false): Promise<void> {
    const s = this.run.carried;
    this.lastCheckpointMs = Date.now();
    this.window.settledSinceCheckpoint = false;
    const seq = ++s.checkpointSeq;
    const args = { runId: this.run.input.runId, seq, phase: this.run.phase, note };
    const p = wf.CancellationScope.nonCancellable(() =>
      (final ? lifecycle : this.dbSteps).checkpointProgress(args),
    ).then(
      ({ delivery, ...live }) => {
        this.lastCheckpointMs = Date.now();
        if (!s.live || live.readAtMs >= s.live.readAtMs) {
          s.live = live;
          // The same pass's delivery counts (absent from readings recorded before 016).
          if (delivery) s.counts.delivery = delivery;
        }
        this.run.bump();
      },
      (err) => {
        const reason = dbStallReason('checkpointProgress', this.run.stallSeconds, err);
        if (!reason) throw err;
        this.run.pause(reason, 'run');
        this.run.bump();
      },
    );
    this.window.keep(p);
    return p;
  }

  /**
   * While batches are in flight, a reading every CHECKPOINT_EVERY_MS (a timer and an activity each),
   * one at a time, and no more than a tenth of the time (READING_SHARE): a reading passes over
   * every row of the run, 1.4-1.5 s at 850,000 rows on the loaded 2-core bench box, where a
   * quarter of the time was a quarter of a core taken from the sends. Idle runs (paused,
   * awaiting approval) add nothing to their history. Not cancellable: a run cancelled from
   * Temporal keeps reading while its batches drain.
   */
  startTicker(): void {
    let lastReadingMs = 0;
    void wf.CancellationScope.nonCancellable(async () => {
      for (;;) {
        await wf.condition(() => this.run.ended || this.window.busy());
        if (this.run.ended) return;
        await wf.sleep(Math.max(CHECKPOINT_EVERY_MS, (1 / READING_SHARE - 1) * lastReadingMs));
        if (this.run.ended) return;
        if (Date.now() - this.lastCheckpointMs >= CHECKPOINT_EVERY_MS - 500) {
          const t0 = Date.now();
          await this.save().catch(() => undefined);
          lastReadingMs = Date.now() - t0;
        }
      }
    }).catch(() => undefined);
  }
}
