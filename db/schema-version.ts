// Whether the database runs the schema this code was written for: every migration in
// db/migrations applied. The live definitions that go with it are in db/schema.sql.
import { listMigrations } from './migrate';
import { readAppliedMigrations } from './sql/applied-migrations';
import type { Db } from './pool';

/** Migrations of this code that the database has not applied, in order (empty: up to date). */
export async function missingMigrations(db: Db): Promise<string[]> {
  const applied = await readAppliedMigrations(db);
  return (await listMigrations()).filter((m) => !applied.has(m.version)).map((m) => m.version);
}
