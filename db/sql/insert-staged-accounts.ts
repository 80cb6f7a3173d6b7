// Moves the staged rows into `accounts`. The plain INSERT is the fast path (ON CONFLICT costs
// about 40% more on large imports); if another session inserted a conflicting account since
// findImportConflicts ran, it is redone with ON CONFLICT DO NOTHING, and the rows it could not
// insert come back as `lost` instead of failing the whole import.
import type { Sql } from '../pool';
import { STAGING_TABLE } from './import-staging';

export interface InsertResult {
  inserted: number;
  lost: { line: number; id: number }[];
}

const COLUMNS =
  'id, account_number, full_name, phone, phone_type, email, plan, status, sms_opt_out, email_opt_out, pin_hash, pin_salt, pin_algo';
const UNIQUE_VIOLATION = '23505';

export async function insertStagedAccounts(client: Sql): Promise<InsertResult> {
  await client.query('SAVEPOINT insert_staged');
  try {
    const r = await client.query(
      `INSERT INTO accounts (${COLUMNS}) SELECT ${COLUMNS} FROM ${STAGING_TABLE} ORDER BY id`,
    );
    await client.query('RELEASE SAVEPOINT insert_staged');
    return { inserted: r.rowCount ?? 0, lost: [] };
  } catch (err) {
    if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
    await client.query('ROLLBACK TO SAVEPOINT insert_staged');
  }
  const { rows } = await client.query<InsertResult>(`
    WITH ins AS (
      INSERT INTO accounts (${COLUMNS})
      SELECT ${COLUMNS} FROM ${STAGING_TABLE} ORDER BY id
      ON CONFLICT DO NOTHING
      RETURNING id
    )
    SELECT (SELECT count(*)::int FROM ins) AS inserted,
           coalesce((SELECT json_agg(json_build_object('line', s.line, 'id', s.id) ORDER BY s.line)
                     FROM ${STAGING_TABLE} s WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = s.id)), '[]') AS lost`);
  return rows[0];
}
