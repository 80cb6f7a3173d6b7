// Empties `accounts` (seed --truncate: demo and test data only). Returns the rows there were.
import type pg from 'pg';

export async function truncateAccounts(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
  await client.query('TRUNCATE accounts');
  return rows[0].n;
}
