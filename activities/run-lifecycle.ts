// Small activities around a run: preparing the cohort, batch planning, checkpoints, rate, end.
import { FAILURE } from '../domain/failures';
import { ApplicationFailure } from '@temporalio/activity';
import { countCohort } from '../db/sql/count-cohort';
import { markResetsDone } from '../db/sql/mark-resets-done';
import { freezeCohortChunk } from '../db/sql/freeze-cohort-chunk';
import { analyzeLedger } from '../db/sql/analyze-ledger';
import { planBatches, type PlannedBatch } from '../db/sql/plan-batches';
import { readCounts } from '../db/sql/read-counts';
import { readLedgerReading } from '../db/sql/read-live-progress';
import { readRun } from '../db/sql/read-run';
import { markRunStarted, recordApproval, recordRunControl, type ControlStatus } from '../db/sql/record-run-control';
import { saveCheckpoint } from '../db/sql/save-checkpoint';
import { setRunStatus } from '../db/sql/set-run-status';
import { setSendRate } from '../db/sql/set-send-rate';
import { markRunStopping } from '../db/sql/send-budget';
import { rateToNumber, type Rate, type RunStatus } from '../domain/run';
import type { LiveReading } from '../domain/live-progress';
import type { DeliveryCounts } from '../domain/delivery';
import type { Counts } from '../domain/types';
import type { ActivityDeps } from './deps';
import { whileAlive } from './keepalive';

/** 100,000 accounts take ~1-2 s to freeze on a loaded 2-core box: far inside the timeout. */
export const FREEZE_DEFAULTS = { chunk: 100_000, statementTimeoutMs: 60_000, budgetMs: 60_000 };

export function makeRunLifecycle(deps: ActivityDeps) {
  const { db } = deps;
  return {
    /** Marks the run running and freezes its cohort; returns the cohort size. */
    async prepareRun(input: { runId: string }): Promise<{ planned: number; frozen?: false }> {
      return whileAlive(async () => {
        const run = await readRun(db, input.runId);
        if (!run) throw new Error(`unknown run ${input.runId}: create it before starting its workflow`);
        // 'created' -> 'running'; a pause recorded before the first step stays.
        await markRunStarted(db, input.runId);
        if (run.cohortKind !== 'all_active') {
          const planned = await countCohort(db, input.runId);
          await analyzeLedger(db);
          return { planned };
        }
        // The default cohort is frozen in chunks (migration 012), each a short transaction: the
        // heartbeats keep going between them, and a retry continues where the last chunk stopped.
        // Each call freezes for at most budgetMs, then answers frozen: false and the workflow calls
        // again: 8.3M accounts took 352 s on a loaded box, past the step's 300-s stall limit.
        const { chunk, statementTimeoutMs, budgetMs } = { ...FREEZE_DEFAULTS, ...deps.freeze };
        const until = Date.now() + budgetMs;
        for (;;) {
          const r = await freezeCohortChunk(db, input.runId, chunk, statementTimeoutMs);
          if (r.done) {
            // The run's rows are all in: plan its statements from statistics that count them (014).
            await analyzeLedger(db);
            return { planned: r.planned };
          }
          if (Date.now() >= until) return { planned: r.planned, frozen: false };
        }
      });
    },

    async planBatches(input: {
      runId: string;
      after: number;
      batchSize: number;
      max: number;
    }): Promise<PlannedBatch[]> {
      return whileAlive(async () => {
        return planBatches(db, input.runId, input.after, input.batchSize, input.max);
      });
    },

    /** Superseded by checkpointProgress; kept for runs started by the previous workflow code. */
    async saveCheckpoint(input: {
      runId: string;
      seq: number;
      phase: string;
      counts: Counts;
      note?: string;
    }): Promise<void> {
      return whileAlive(async () => {
        await saveCheckpoint(db, input.runId, input.seq, input.phase, input.counts, input.note);
      });
    },

    /**
     * Reads the run's live progress from the ledger and saves it as a checkpoint (the ledger's
     * counts, so a status read without a worker shows the same). Returns the reading, with the
     * delivery counts of the same pass.
     */
    async checkpointProgress(input: {
      runId: string;
      seq: number;
      phase: string;
      note?: string;
    }): Promise<LiveReading & { delivery?: DeliveryCounts }> {
      return whileAlive(async () => {
        // Delivery receipts ride along (issue 11): a status read from the checkpoint shows them too.
        const { live, delivery } = await readLedgerReading(db, input.runId);
        await saveCheckpoint(db, input.runId, input.seq, input.phase, { ...live.counts, delivery }, input.note, live);
        return { ...live, delivery };
      });
    },

    /** Pause, resume or cancel, recorded at once for every worker's send path (ordered by seq). */
    async recordRunControl(input: {
      runId: string;
      seq: number;
      status: ControlStatus;
      reason?: string;
    }): Promise<void> {
      return whileAlive(async () => {
        await recordRunControl(db, input.runId, input.seq, input.status, input.reason);
      });
    },

    /** Who approved the canary, and when (the first approval stays). */
    async recordApproval(input: { runId: string; by: string }): Promise<{ by: string; atMs: number }> {
      return whileAlive(async () => {
        const a = await recordApproval(db, input.runId, input.by);
        if (!a) throw new Error(`unknown run ${input.runId}`);
        return { by: a.by, atMs: a.at.getTime() };
      });
    },

    /** Returns the exposure window: run start to the last PIN invalidated, in ms. */
    async markResetsDone(input: { runId: string }): Promise<{ exposureWindowMs: number }> {
      return whileAlive(async () => ({ exposureWindowMs: await markResetsDone(db, input.runId) }));
    },

    async setSendRate(input: { runId: string; ratePerSecond: Rate }): Promise<void> {
      return whileAlive(async () => {
        await setSendRate(db, input.runId, rateToNumber(input.ratePerSecond));
      });
    },

    /** Cancel: sends waiting for a slot stop now instead of finishing their batch at the rate. */
    async markRunStopping(input: { runId: string }): Promise<void> {
      return whileAlive(async () => {
        await markRunStopping(db, input.runId);
      });
    },

    async setRunStatus(input: { runId: string; status: RunStatus; reason?: string }): Promise<void> {
      return whileAlive(async () => {
        await setRunStatus(db, input.runId, input.status, input.reason);
      });
    },

    /** Refuses (for good) while the run is live: a batch must not be processed beside its own run. */
    async assertRunNotLive(input: { runId: string }): Promise<void> {
      const run = await readRun(db, input.runId);
      if (!run) throw ApplicationFailure.nonRetryable(`unknown run ${input.runId}`, FAILURE.unknownRun);
      if (['created', 'running', 'paused', 'cancelling'].includes(run.status)) {
        throw ApplicationFailure.nonRetryable(
          `run ${input.runId} is ${run.status}: rerun a batch only once the run has ended`,
          FAILURE.runLive,
        );
      }
    },

    /** Authoritative counts from the ledger. */
    async readRunCounts(input: { runId: string }): Promise<Counts> {
      return whileAlive(async () => {
        return readCounts(db, input.runId);
      });
    },
  };
}
