import type { Db } from '../pool';

/** Whether a schema migration (e.g. '004') has been applied to this database. */
export async function hasMigration(db: Db, version: string): Promise<boolean> {
  const res = await db.query(
    `SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`,
  );
  if (res.rowCount === 0) return false;
  const v = await db.query('SELECT 1 FROM schema_migrations WHERE version = $1', [version]);
  return (v.rowCount ?? 0) > 0;
}
