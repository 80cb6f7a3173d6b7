// `npm run migrate`: applies the numbered migrations in db/migrations to DATABASE_URL.
import { loadConfig } from '../config';
import { loadDotEnv } from '../config/dotenv';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';

loadDotEnv();
const config = loadConfig(process.env, ['database']);
const db = createPool(config.database.url, 1);
migrate(db)
  .then((applied) => console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'database schema is up to date'))
  .catch((err) => {
    console.error(`migrate: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(() => db.end());
