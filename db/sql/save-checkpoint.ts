import type { Sql } from '../pool';
import type { Counts } from '../../domain/types';
import type { LiveReading } from '../../domain/live-progress';

/** Persists a progress checkpoint; the same seq twice is one checkpoint. */
export async function saveCheckpoint(
  db: Sql,
  runId: string,
  seq: number,
  phase: string,
  counts: Counts,
  note?: string,
  live?: LiveReading,
): Promise<void> {
  await db.query(
    `INSERT INTO checkpoints (run_id, seq, phase, counts, note, live) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (run_id, seq) DO NOTHING`,
    [runId, seq, phase, JSON.stringify(counts), note ?? null, live ? JSON.stringify(live) : null],
  );
}
