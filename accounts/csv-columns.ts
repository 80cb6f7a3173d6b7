// The account CSV's header: which columns exist, which must be present, in any order.
//
// Header: all ten REQUIRED_COLUMNS, `pin` optional; names trimmed, case-insensitive, any order.
// Values (trimmed; see validate-row.ts):
//   id              required: positive integer (no sign, no leading zero), unique in file and DB
//   account_number  required: 1-64 characters, unique in file and DB
//   full_name       required: 1-200 characters (code points), any Unicode
//   status          required: active | suspended | closed | deleted (case-insensitive)
//   plan            optional: up to 64 characters, empty = 'prepaid'
//   sms_opt_out, email_opt_out  optional: true/false, t/f, yes/no, y/n, 1/0; empty = false
//   phone, phone_type, email, pin  optional contact data: an invalid value is stored empty and
//                   reported as a warning; the account is still imported

export const REQUIRED_COLUMNS = [
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
] as const;
export const OPTIONAL_COLUMNS = ['pin'] as const;

export type ColumnName = (typeof REQUIRED_COLUMNS)[number] | (typeof OPTIONAL_COLUMNS)[number];

/** Position of each column in a record. */
export type ColumnMap = { [K in (typeof REQUIRED_COLUMNS)[number]]: number } & { pin?: number; count: number };

/**
 * Maps a header record to column positions, or lists what is wrong with it. Names are matched
 * trimmed and case-insensitively. Unknown names are reported by position only: a file without a
 * header row would otherwise have its first customer echoed into the error.
 */
export function parseHeader(header: string[]): { columns: ColumnMap } | { problems: string[] } {
  const known = new Set<string>([...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS]);
  const positions = new Map<string, number>();
  const problems: string[] = [];
  const unknown: number[] = [];
  header.forEach((raw, i) => {
    const name = raw.trim().toLowerCase();
    if (!known.has(name)) unknown.push(i + 1);
    else if (positions.has(name)) problems.push(`column "${name}" appears more than once`);
    else positions.set(name, i);
  });
  if (unknown.length) problems.push(`unknown column name at position ${unknown.join(', ')}`);
  const missing = REQUIRED_COLUMNS.filter((c) => !positions.has(c));
  if (missing.length) problems.push(`missing column ${missing.join(', ')}`);
  if (missing.length === REQUIRED_COLUMNS.length) problems.push('is the header row missing?');
  if (problems.length) return { problems };
  const columns = { count: header.length } as ColumnMap;
  for (const [name, pos] of positions) (columns as Record<string, number>)[name] = pos;
  return { columns };
}

export const EXPECTED_HEADER = [...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS].join(',');
