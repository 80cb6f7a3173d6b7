import type { Db } from '../pool';

/** The ids among `ids` that are not in `accounts` (one page of a cohort file), in id order. */
export async function findUnknownAccounts(db: Db, ids: number[]): Promise<number[]> {
  if (ids.length === 0) return [];
  const res = await db.query<{ id: number }>(
    `SELECT x.id FROM unnest($1::bigint[]) AS x(id) WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = x.id) ORDER BY x.id`,
    [ids],
  );
  return res.rows.map((r) => r.id);
}
