// The import's staging table: validated rows land here by COPY, are checked against each other and
// against `accounts` in SQL, then move to `accounts` in the same transaction. Temporary and
// dropped at commit, so concurrent imports do not see each other's rows.
import type { Sql } from '../pool';

export const STAGING_TABLE = 'account_import';

/** Column order of the COPY text rows written by encodeStagingRow. */
export const STAGING_COLUMNS = [
  'line',
  'id',
  'account_number',
  'full_name',
  'phone',
  'phone_type',
  'email',
  'plan',
  'status',
  'sms_opt_out',
  'email_opt_out',
  'pin_hash',
  'pin_salt',
  'pin_algo',
] as const;

export async function createImportStaging(client: Sql): Promise<void> {
  await client.query(`
    CREATE TEMP TABLE ${STAGING_TABLE} (
      line integer NOT NULL, id bigint NOT NULL, account_number text NOT NULL, full_name text NOT NULL,
      phone text, phone_type text, email text, plan text NOT NULL, status text NOT NULL,
      sms_opt_out boolean NOT NULL, email_opt_out boolean NOT NULL,
      pin_hash bytea, pin_salt bytea, pin_algo text
    ) ON COMMIT DROP`);
}
