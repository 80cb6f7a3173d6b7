// `npm run db:dump`: writes db/schema.sql, the live schema after every migration (db/schema-dump.ts).
// Migrates a fresh database (on DATABASE_URL's server when set, else an embedded PostgreSQL) so the
// file shows what the migrations produce, never the state of someone's working database.
//   npm run db:dump            write db/schema.sql
//   npm run db:dump -- --check exit 1 when db/schema.sql is stale
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { dumpSchema } from '../db/schema-dump';
import { createDatabase, startPostgres } from '../stack/postgres';
import { PROJECT_ROOT } from '../stack';

const target = path.join(PROJECT_ROOT, 'db', 'schema.sql');

async function main(): Promise<void> {
  const dataDir = path.join(PROJECT_ROOT, '.data', `db-dump-${process.pid}`);
  const server = await startPostgres({ dataDir });
  const url = await createDatabase(server.url, `pinreset_schema_dump_${process.pid}`);
  const db = createPool(url, 1);
  try {
    await migrate(db);
    const text = await dumpSchema(db);
    if (process.argv.includes('--check')) {
      const committed = await readFile(target, 'utf8').catch(() => '');
      if (committed !== text) {
        console.error('db/schema.sql is stale: run `npm run db:dump` and commit it');
        process.exitCode = 1;
      } else console.log('db/schema.sql is up to date');
    } else {
      await writeFile(target, text);
      console.log(`wrote db/schema.sql (${text.split('\n').length} lines)`);
    }
  } finally {
    await db.end();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`db:dump: ${(err as Error).message}`);
  process.exitCode = 1;
});
