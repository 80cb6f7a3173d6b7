// Staged rows that cannot be inserted: a later duplicate of an id or account number in the same
// file (the first one wins), or an id or account number already in `accounts`. The import is
// insert-only: it never overwrites an account, whose PIN state the reset pipeline owns.
import type { Sql } from '../pool';
import { STAGING_TABLE } from './import-staging';

export interface ImportConflict {
  line: number;
  id: number;
  field: 'id' | 'account_number';
  reason: string;
}

export async function findImportConflicts(client: Sql): Promise<ImportConflict[]> {
  const { rows } = await client.query<ImportConflict>(`
    WITH firsts AS (
      SELECT line, id,
             min(line) OVER (PARTITION BY id) AS first_id_line,
             min(line) OVER (PARTITION BY account_number) AS first_number_line
      FROM ${STAGING_TABLE}
    )
    SELECT line, id, 'id' AS field, 'duplicate of line ' || first_id_line AS reason
      FROM firsts WHERE line > first_id_line
    UNION ALL
    SELECT line, id, 'account_number', 'duplicate of line ' || first_number_line
      FROM firsts WHERE line > first_number_line
    UNION ALL
    SELECT s.line, s.id, 'id', 'already exists in the database'
      FROM ${STAGING_TABLE} s JOIN accounts a ON a.id = s.id
    UNION ALL
    SELECT s.line, s.id, 'account_number', 'already exists in the database'
      FROM ${STAGING_TABLE} s JOIN accounts a ON a.account_number = s.account_number
    ORDER BY line, field`);
  return rows;
}

/** Drops the given lines from the staging table. */
export async function dropStagedLines(client: Sql, lines: number[]): Promise<void> {
  if (lines.length) await client.query(`DELETE FROM ${STAGING_TABLE} WHERE line = ANY($1::int[])`, [lines]);
}
