import { inTransaction, type Db } from '../pool';

/**
 * Freezes the next chunk of at most `chunk` open accounts into the run's ledger (migration 012),
 * in its own transaction under a statement timeout: no statement of the freeze can run for
 * minutes, whatever the cohort's size. `done` once the whole cohort is frozen; `planned` so far.
 */
export async function freezeCohortChunk(
  db: Db,
  runId: string,
  chunk: number,
  statementTimeoutMs: number,
): Promise<{ done: boolean; planned: number }> {
  return inTransaction(db, async (client) => {
    await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(statementTimeoutMs))}`);
    const res = await client.query<{ done: boolean; planned: number }>(
      'SELECT done, planned FROM pinreset_freeze_cohort_chunk($1, $2)',
      [runId, chunk],
    );
    return res.rows[0];
  });
}
