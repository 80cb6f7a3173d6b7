// A fresh, migrated database for the accounts tests: a new database on the shared test server
// (vitest global setup) or on DATABASE_URL's server, else an embedded PostgreSQL of its own.
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { createDatabase, startPostgres, type LocalPostgres } from '../../stack/postgres';
import { createPool, type Db } from '../../db/pool';
import { migrate } from '../../db/migrate';

export interface TestDb {
  db: Db;
  url: string;
  stop(): Promise<void>;
}

export async function accountsTestDb(label: string): Promise<TestDb> {
  const shared = (inject('databaseUrl') as string | undefined) ?? process.env.DATABASE_URL;
  let server: LocalPostgres | undefined;
  let url: string;
  if (shared) {
    url = await createDatabase(shared, `t_${label.replace(/\W/g, '_')}_${randomUUID().slice(0, 8)}`);
  } else {
    server = await startPostgres({ dataDir: `.data/test-${label}` });
    url = server.url;
  }
  const db = createPool(url, 4);
  await migrate(db);
  return {
    db,
    url,
    async stop() {
      await db.end();
      await server?.stop();
    },
  };
}
