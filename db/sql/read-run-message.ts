import type { Sql } from '../pool';

/** The message parameters frozen in the run's row when it was created (null for older runs). */
export async function readRunMessage(db: Sql, runId: string): Promise<Record<string, unknown> | null> {
  const res = await db.query<{ message: Record<string, unknown> | null }>('SELECT message FROM runs WHERE id = $1', [
    runId,
  ]);
  return res.rows[0]?.message ?? null;
}
