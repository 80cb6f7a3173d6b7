// db/schema.sql is the live schema after every migration: it must match what the migrations
// produce on a fresh database, so a new migration without `npm run db:dump` fails here.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dumpSchema } from '../db/schema-dump';
import { missingMigrations } from '../db/schema-version';
import { PROJECT_ROOT } from '../stack';
import { freshDatabase } from './support/harness';
import type { Db } from '../db/pool';

describe('the live schema', () => {
  let db: Db | undefined;
  afterAll(async () => db?.end());

  it('db/schema.sql is what the migrations produce (else: npm run db:dump)', async () => {
    ({ db } = await freshDatabase('schema'));
    const live = await dumpSchema(db);
    const committed = await readFile(path.join(PROJECT_ROOT, 'db', 'schema.sql'), 'utf8');
    if (live !== committed) {
      const a = committed.split('\n');
      const b = live.split('\n');
      const at = a.findIndex((line, i) => line !== b[i]);
      expect.fail(
        `db/schema.sql is stale (first difference at line ${at + 1}: ${JSON.stringify(a[at])} vs ${JSON.stringify(b[at])}): run \`npm run db:dump\``,
      );
    }
    // The dump shows the one live body of a function that several migrations redefined.
    expect(live.match(/CREATE OR REPLACE FUNCTION pinreset_reset_batch\(/g)).toHaveLength(1);
  });

  it('knows when a database lacks migrations of this release', async () => {
    expect(await missingMigrations(db!)).toEqual([]);
    await db!.query(`DELETE FROM schema_migrations WHERE version IN ('004', '007')`);
    expect(await missingMigrations(db!)).toEqual(['004', '007']);
  });
});
