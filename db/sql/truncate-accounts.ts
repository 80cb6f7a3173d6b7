// Empties `accounts` (seed --truncate: demo and test data only). Returns the rows there were.
import type { Sql } from '../pool';

export async function truncateAccounts(client: Sql): Promise<number> {
  const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
  await client.query('TRUNCATE accounts');
  return rows[0].n;
}
