import type { Sql } from '../pool';

/** Versions recorded by db/migrate.ts (none when the database was never migrated). */
export async function readAppliedMigrations(db: Sql): Promise<Set<string>> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
  if (!exists.rows[0]?.t) return new Set();
  const res = await db.query<{ version: string }>('SELECT version FROM schema_migrations');
  return new Set(res.rows.map((r) => r.version));
}
