import { readCounts } from '../db/sql/read-counts';
import { resetBatch as resetBatchSql } from '../db/sql/reset-batch';
import { acquireResetSlots } from '../db/sql/acquire-reset-slots';
import type { Counts } from '../domain/types';
import { systemClock, type ActivityDeps } from './deps';
import { whileAlive } from './keepalive';

export interface ResetBatchInput {
  runId: string;
  first: number;
  last: number;
  size: number;
  /** Incident or ticket id, recorded on each account. */
  reason: string;
}

export function makeResetBatch(deps: ActivityDeps) {
  const clock = deps.clock ?? systemClock;
  /** Returns the batch's counts as the ledger has them now, so a retried batch reports the same. */
  return async function resetBatch(input: ResetBatchInput): Promise<Counts> {
    return whileAlive(async () => {
      const wait = await acquireResetSlots(deps.db, input.runId, input.size);
      if (wait > 0) await clock.sleep(wait);
      await resetBatchSql(deps.db, input.runId, input.first, input.last, input.reason);
      return readCounts(deps.db, input.runId, { first: input.first, last: input.last });
    });
  };
}
