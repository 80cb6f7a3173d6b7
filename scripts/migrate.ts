// `npm run migrate`: applies the numbered migrations in db/migrations to DATABASE_URL. With
// WORKER_DB_USER and WORKER_DB_PASSWORD set, it then creates (or re-passwords) that login in the
// least-privilege group role pinreset_worker, which the workers connect as (docker-compose.yml).
import { loadConfig } from '../config';
import { loadDotEnv } from '../config/dotenv';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { ensureWorkerLogin } from '../db/sql/ensure-worker-login';

loadDotEnv();
const config = loadConfig(process.env, ['database']);
const db = createPool(config.database.url, 1);

async function main(): Promise<void> {
  const applied = await migrate(db);
  console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'database schema is up to date');
  const { WORKER_DB_USER: user, WORKER_DB_PASSWORD: password } = process.env;
  if (user || password) {
    if (!user || !password) throw new Error('set both WORKER_DB_USER and WORKER_DB_PASSWORD, or neither');
    console.log(`worker login ${user} ${await ensureWorkerLogin(db, user, password)} in role pinreset_worker`);
  }
}

main()
  .catch((err) => {
    console.error(`migrate: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(() => db.end());
