import type { Sql } from '../pool';
import { CONTACT_COLUMNS, toContactRow, type ContactRow } from './read-active-contacts';

/** Contact data of the given accounts (one page of an explicit cohort); ids not in `accounts` are absent. */
export async function readContactsByIds(db: Sql, ids: number[]): Promise<ContactRow[]> {
  if (ids.length === 0) return [];
  const res = await db.query(`SELECT ${CONTACT_COLUMNS} FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids]);
  return res.rows.map(toContactRow);
}
