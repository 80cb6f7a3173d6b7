import type { Db } from '../pool';

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates (or re-passwords) the worker's login role as a member of the NOLOGIN group role
 * pinreset_worker (db/migrations/005_roles.sql, 011_least_privilege.sql). Run by the owner after
 * the migrations (`migrate` with WORKER_DB_USER and WORKER_DB_PASSWORD set: docker-compose.yml).
 */
export async function ensureWorkerLogin(db: Db, user: string, password: string): Promise<'created' | 'updated'> {
  if (!NAME.test(user))
    throw new Error(`WORKER_DB_USER must be a plain lower-case SQL name (a-z, 0-9, _), got ${JSON.stringify(user)}`);
  if (password.length < 12) throw new Error('WORKER_DB_PASSWORD must be at least 12 characters');
  const client = await db.connect();
  try {
    // Utility statements take no bind parameters: quote the password as a literal server-side.
    const { rows } = await client.query<{ lit: string }>('SELECT quote_literal($1) AS lit', [password]);
    const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user])).rowCount === 1;
    if (exists) await client.query(`ALTER ROLE ${user} LOGIN PASSWORD ${rows[0].lit}`);
    else await client.query(`CREATE ROLE ${user} LOGIN PASSWORD ${rows[0].lit}`);
    await client.query(`GRANT pinreset_worker TO ${user}`);
    return exists ? 'updated' : 'created';
  } finally {
    client.release();
  }
}
