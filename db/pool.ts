import pg from 'pg';

// bigint columns (account ids) come back as JS numbers: ids stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** A pool: what services and scripts open. */
export type Db = pg.Pool;

/**
 * What every db/sql module takes: anything that runs a query, a pool or one client inside a
 * transaction (inTransaction). Those that open a transaction of their own (reset-batch,
 * freeze-cohort-chunk, ensure-worker-login) take the pool.
 */
export type Sql = Pick<pg.ClientBase, 'query'>;

export function createPool(url: string, max = 10): Db {
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'pinreset' });
  // An idle client losing its connection (e.g. a database restart) must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

/** Runs fn in one transaction on one client. */
export async function inTransaction<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
