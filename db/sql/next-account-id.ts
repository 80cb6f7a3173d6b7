// The first free id after the existing accounts (ids stay contiguous across seeds).
import type { Sql } from '../pool';

export async function nextAccountId(client: Sql): Promise<number> {
  const { rows } = await client.query<{ next: number }>(
    'SELECT coalesce(max(id), 0)::bigint + 1 AS next FROM accounts',
  );
  return rows[0].next;
}
