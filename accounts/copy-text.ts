// PostgreSQL COPY text format: tab-separated, \N for NULL, backslash escapes for the characters
// that would otherwise end a field or a row.
import type { PinVerifier } from '../domain/pin';
import type { AccountRow } from './validate-row';

const NEEDS_ESCAPE = /[\\\t\n\r]/;

export function copyValue(v: string | number | boolean | Buffer | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (typeof v === 'number') return String(v);
  // bytea in hex input format; its backslash is escaped for the COPY layer.
  if (Buffer.isBuffer(v)) return `\\\\x${v.toString('hex')}`;
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** One staging row (columns in STAGING_COLUMNS order), newline-terminated. */
export function encodeStagingRow(row: AccountRow, verifier: PinVerifier | null): string {
  return (
    [
      row.line,
      row.id,
      row.accountNumber,
      row.fullName,
      row.phone,
      row.phoneType,
      row.email,
      row.plan,
      row.status,
      row.smsOptOut,
      row.emailOptOut,
      verifier?.hash ?? null,
      verifier?.salt ?? null,
      verifier?.algo ?? null,
    ]
      .map(copyValue)
      .join('\t') + '\n'
  );
}
