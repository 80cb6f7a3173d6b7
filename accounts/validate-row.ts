// One CSV record to one account row. Two kinds of problem:
//  - structural (id, account number, status, plan, opt-out flags, field count, quoting): the row
//    cannot be trusted and is rejected;
//  - contact and name (phone, phone type, email, PIN format, full name): the account is still
//    imported, because its PIN must be reset whatever its contact data or name, with the bad value
//    stored empty (a name cut to its limit) and a warning that flags the field.
// Reasons name the field and the rule, never the value.
import { normalizePhone, isPhoneType, type PhoneType } from '../domain/phone';
import { validateEmail } from '../domain/email';
import { isValidPinFormat } from '../domain/pin';
import type { ColumnMap } from './csv-columns';

export const STATUSES = ['active', 'suspended', 'closed', 'deleted'] as const;
export type AccountStatus = (typeof STATUSES)[number];

export const MAX_NAME_CHARS = 200;
export const MAX_ACCOUNT_NUMBER_CHARS = 64;
export const MAX_PLAN_CHARS = 64;
export const DEFAULT_PLAN = 'prepaid';

export interface AccountRow {
  line: number;
  id: number;
  accountNumber: string;
  fullName: string;
  phone: string | null;
  phoneType: PhoneType | null;
  email: string | null;
  plan: string;
  status: AccountStatus;
  smsOptOut: boolean;
  emailOptOut: boolean;
  /** Plaintext only on its way to hashPin; never stored or logged. */
  pin: string | null;
}

export interface Problem {
  field: string;
  reason: string;
}

export type RowOutcome =
  | { ok: true; row: AccountRow; warnings: Problem[] }
  | { ok: false; errors: Problem[]; /** Set when the id itself was valid, for the report. */ id?: number };

const TRUE = new Set(['true', 't', 'yes', 'y', '1']);
const FALSE = new Set(['false', 'f', 'no', 'n', '0', '']);

export function validateRow(fields: string[], columns: ColumnMap, line: number, opts: { pins: boolean }): RowOutcome {
  if (fields.length !== columns.count) {
    return {
      ok: false,
      errors: [{ field: 'row', reason: `expected ${columns.count} fields, found ${fields.length}` }],
    };
  }
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const get = (pos: number) => fields[pos].trim();
  // PostgreSQL text cannot hold NUL: such a value would abort the whole COPY.
  if (fields.some((f) => f.includes('\u0000'))) errors.push({ field: 'row', reason: 'contains a NUL character' });

  const idText = get(columns.id);
  const id = /^[1-9]\d{0,15}$/.test(idText) && Number(idText) <= Number.MAX_SAFE_INTEGER ? Number(idText) : undefined;
  if (id === undefined) errors.push({ field: 'id', reason: idText === '' ? 'missing' : 'not a positive integer' });

  const accountNumber = get(columns.account_number);
  if (accountNumber === '') errors.push({ field: 'account_number', reason: 'missing' });
  else if (accountNumber.length > MAX_ACCOUNT_NUMBER_CHARS)
    errors.push({ field: 'account_number', reason: `longer than ${MAX_ACCOUNT_NUMBER_CHARS} characters` });

  // A bad name must not keep an exposed PIN from its reset: keep the account, flag the field.
  let fullName = get(columns.full_name).normalize('NFC');
  if (fullName === '') warnings.push({ field: 'full_name', reason: 'missing; stored empty' });
  // UTF-16 length bounds the code point count from above: count only when it might matter.
  else if (fullName.length > MAX_NAME_CHARS && [...fullName].length > MAX_NAME_CHARS) {
    fullName = [...fullName].slice(0, MAX_NAME_CHARS).join('');
    warnings.push({
      field: 'full_name',
      reason: `longer than ${MAX_NAME_CHARS} characters; stored cut to ${MAX_NAME_CHARS}`,
    });
  }

  const plan = get(columns.plan) || DEFAULT_PLAN;
  if (plan.length > MAX_PLAN_CHARS) errors.push({ field: 'plan', reason: `longer than ${MAX_PLAN_CHARS} characters` });

  const statusText = get(columns.status).toLowerCase();
  const status = (STATUSES as readonly string[]).includes(statusText) ? (statusText as AccountStatus) : undefined;
  if (!status)
    errors.push({ field: 'status', reason: statusText === '' ? 'missing' : `not one of ${STATUSES.join(', ')}` });

  const smsOptOut = parseBool(get(columns.sms_opt_out));
  if (smsOptOut === undefined) errors.push({ field: 'sms_opt_out', reason: 'not a boolean (true/false, yes/no, 1/0)' });
  const emailOptOut = parseBool(get(columns.email_opt_out));
  if (emailOptOut === undefined)
    errors.push({ field: 'email_opt_out', reason: 'not a boolean (true/false, yes/no, 1/0)' });

  if (errors.length || id === undefined || !status || smsOptOut === undefined || emailOptOut === undefined) {
    return { ok: false, errors, id };
  }

  let phone: string | null = null;
  const phoneText = get(columns.phone);
  if (phoneText !== '') {
    const r = normalizePhone(phoneText);
    if ('e164' in r) phone = r.e164;
    else warnings.push({ field: 'phone', reason: `not a valid phone number (${r.error}); stored empty` });
  }

  // A type without a number means nothing; a number without a known type is 'unknown'.
  let phoneType: PhoneType | null = null;
  const typeText = get(columns.phone_type).toLowerCase();
  if (phone !== null) {
    if (typeText === '') phoneType = 'unknown';
    else if (isPhoneType(typeText)) phoneType = typeText;
    else {
      phoneType = 'unknown';
      warnings.push({ field: 'phone_type', reason: 'not one of mobile, landline, voip, unknown; stored as unknown' });
    }
  }

  let email: string | null = null;
  const emailText = get(columns.email);
  if (emailText !== '') {
    const r = validateEmail(emailText);
    if ('email' in r) email = r.email;
    else warnings.push({ field: 'email', reason: `not a valid email address (${r.error}); stored empty` });
  }

  let pin: string | null = null;
  if (opts.pins && columns.pin !== undefined) {
    const pinText = get(columns.pin);
    if (isValidPinFormat(pinText)) pin = pinText;
    else if (pinText !== '') warnings.push({ field: 'pin', reason: 'not 4-12 digits; no verifier stored' });
  }

  return {
    ok: true,
    row: { line, id, accountNumber, fullName, phone, phoneType, email, plan, status, smsOptOut, emailOptOut, pin },
    warnings,
  };
}

/** Empty counts as false: exports commonly leave unset flags blank. */
function parseBool(text: string): boolean | undefined {
  const t = text.toLowerCase();
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  return undefined;
}
