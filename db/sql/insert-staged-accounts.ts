// Moves the staged rows into `accounts`. ON CONFLICT DO NOTHING makes a row that another session
// inserted since findImportConflicts ran come back as `lost` instead of failing the transaction.
import type pg from 'pg';
import { STAGING_TABLE } from './import-staging';

export interface InsertResult {
  inserted: number;
  lost: { line: number; id: number }[];
}

export async function insertStagedAccounts(client: pg.ClientBase): Promise<InsertResult> {
  const { rows } = await client.query<{ inserted: number; lost: { line: number; id: number }[] }>(`
    WITH ins AS (
      INSERT INTO accounts (id, account_number, full_name, phone, phone_type, email, plan, status,
                            sms_opt_out, email_opt_out, pin_hash, pin_salt, pin_algo)
      SELECT id, account_number, full_name, phone, phone_type, email, plan, status,
             sms_opt_out, email_opt_out, pin_hash, pin_salt, pin_algo
      FROM ${STAGING_TABLE} ORDER BY id
      ON CONFLICT DO NOTHING
      RETURNING id
    )
    SELECT (SELECT count(*)::int FROM ins) AS inserted,
           coalesce((SELECT json_agg(json_build_object('line', s.line, 'id', s.id) ORDER BY s.line)
                     FROM ${STAGING_TABLE} s WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = s.id)), '[]') AS lost`);
  return rows[0];
}
