import type { Db } from '../pool';

/** Marker inside the body of the pinreset_reset_batch that leaves PINs of redrive runs alone (004). */
export const REDRIVE_RESET_MARKER = 'pinreset:redrive-keeps-pins';

/**
 * Whether the installed pinreset_reset_batch skips the PIN reset for redrive runs: true only when
 * its body carries the marker of db/migrations/004_redrive_reset.sql. A redrive must not start on
 * a database where it would invalidate PINs a second time (004 missing, or replaced by a later
 * migration that dropped the redrive branch).
 */
export async function redriveResetInstalled(db: Db): Promise<boolean> {
  const res = await db.query<{ src: string }>(
    `SELECT p.prosrc AS src FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proname = 'pinreset_reset_batch' AND n.nspname = current_schema()`,
  );
  return res.rows.length > 0 && res.rows.every((r) => r.src.includes(REDRIVE_RESET_MARKER));
}
