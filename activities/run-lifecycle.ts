// Small activities around a run: preparing the cohort, batch planning, checkpoints, rate, end.
import { countCohort } from '../db/sql/count-cohort';
import { markResetsDone } from '../db/sql/mark-resets-done';
import { materializeActiveCohort } from '../db/sql/materialize-active-cohort';
import { planBatches, type PlannedBatch } from '../db/sql/plan-batches';
import { readCounts } from '../db/sql/read-counts';
import { readRun } from '../db/sql/read-run';
import { saveCheckpoint } from '../db/sql/save-checkpoint';
import { setRunStatus } from '../db/sql/set-run-status';
import { setSendRate } from '../db/sql/set-send-rate';
import { markRunStopping } from '../db/sql/send-budget';
import { rateToNumber, type Rate, type RunStatus } from '../domain/run';
import type { Counts } from '../domain/types';
import type { ActivityDeps } from './deps';
import { whileAlive } from './keepalive';

export function makeRunLifecycle(deps: ActivityDeps) {
  const { db } = deps;
  return {
    /** Marks the run running and freezes its cohort; returns the cohort size. */
    async prepareRun(input: { runId: string }): Promise<{ planned: number }> {
      return whileAlive(async () => {
        const run = await readRun(db, input.runId);
        if (!run) throw new Error(`unknown run ${input.runId}: create it before starting its workflow`);
        await setRunStatus(db, input.runId, 'running');
        const planned = run.cohortKind === 'all_active' ? await materializeActiveCohort(db, input.runId) : await countCohort(db, input.runId);
        return { planned };
      });
    },

    async planBatches(input: { runId: string; after: number; batchSize: number; max: number }): Promise<PlannedBatch[]> {
      return whileAlive(async () => {
        return planBatches(db, input.runId, input.after, input.batchSize, input.max);
      });
    },

    async saveCheckpoint(input: { runId: string; seq: number; phase: string; counts: Counts; note?: string }): Promise<void> {
      return whileAlive(async () => {
        await saveCheckpoint(db, input.runId, input.seq, input.phase, input.counts, input.note);
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

    /** Authoritative counts from the ledger. */
    async readRunCounts(input: { runId: string }): Promise<Counts> {
      return whileAlive(async () => {
        return readCounts(db, input.runId);
      });
    },
  };
}
