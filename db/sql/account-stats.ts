// Aggregate counts over `accounts` for operators: categories only, never a customer's value.
// "Valid phone" uses the same rule as domain/phone.ts isE164 (NANP area and exchange codes start
// with 2-9); "email looks malformed" is a rough SQL check, domain/email.ts is the authority.
import type { Sql } from '../pool';

export interface AccountStats {
  total: number;
  status: Record<string, number>;
  phone: { valid: number; invalid: number; missing: number };
  phoneType: Record<string, number>;
  email: { present: number; malformed: number; missing: number };
  smsOptOut: number;
  emailOptOut: number;
  pinAlgo: Record<string, number>;
  pinStatus: Record<string, number>;
}

const VALID_PHONE = `(phone ~ '^\\+1[2-9][0-9]{2}[2-9][0-9]{6}$' OR phone ~ '^\\+[2-9][0-9]{7,14}$')`;
const MALFORMED_EMAIL = `(email !~ '^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:].]+$' OR email ~ '\\.\\.')`;

/** Counts over all accounts, or over ids in [firstId, lastId]. */
export async function accountStats(db: Sql, range?: { firstId: number; lastId: number }): Promise<AccountStats> {
  const where = range ? 'WHERE id BETWEEN $1 AND $2' : '';
  const params = range ? [range.firstId, range.lastId] : [];
  const { rows } = await db.query(
    `SELECT count(*)::int AS total,
            coalesce((SELECT json_object_agg(status, n) FROM (SELECT status, count(*)::int n FROM accounts ${where} GROUP BY status) s), '{}') AS status,
            count(*) FILTER (WHERE phone IS NOT NULL AND ${VALID_PHONE})::int AS phone_valid,
            count(*) FILTER (WHERE phone IS NOT NULL AND NOT ${VALID_PHONE})::int AS phone_invalid,
            count(*) FILTER (WHERE phone IS NULL)::int AS phone_missing,
            coalesce((SELECT json_object_agg(coalesce(phone_type, 'none'), n) FROM (SELECT phone_type, count(*)::int n FROM accounts ${where} GROUP BY phone_type) s), '{}') AS phone_type,
            count(*) FILTER (WHERE email IS NOT NULL)::int AS email_present,
            count(*) FILTER (WHERE email IS NOT NULL AND ${MALFORMED_EMAIL})::int AS email_malformed,
            count(*) FILTER (WHERE email IS NULL)::int AS email_missing,
            count(*) FILTER (WHERE sms_opt_out)::int AS sms_opt_out,
            count(*) FILTER (WHERE email_opt_out)::int AS email_opt_out,
            coalesce((SELECT json_object_agg(coalesce(algo, 'none'), n) FROM (SELECT pin_algo AS algo, count(*)::int n FROM accounts ${where} GROUP BY pin_algo) s), '{}') AS pin_algo,
            coalesce((SELECT json_object_agg(pin_status, n) FROM (SELECT pin_status, count(*)::int n FROM accounts ${where} GROUP BY pin_status) s), '{}') AS pin_status
     FROM accounts ${where}`,
    params,
  );
  const r = rows[0];
  return {
    total: r.total,
    status: r.status,
    phone: { valid: r.phone_valid, invalid: r.phone_invalid, missing: r.phone_missing },
    phoneType: r.phone_type,
    email: { present: r.email_present, malformed: r.email_malformed, missing: r.email_missing },
    smsOptOut: r.sms_opt_out,
    emailOptOut: r.email_opt_out,
    pinAlgo: r.pin_algo,
    pinStatus: r.pin_status,
  };
}
