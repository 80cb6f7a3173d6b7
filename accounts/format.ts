// Human-readable summaries of import, seed and stats results: counts and shares only.
import type { AccountStats } from '../db/sql/account-stats';
import type { ImportResult } from './import';
import type { SeedResult } from './seed';

const n = (x: number) => x.toLocaleString('en-US');
const pct = (x: number, total: number) => (total > 0 ? `${((100 * x) / total).toFixed(2)}%` : '-');
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const byField = (m: Record<string, number>) =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${n(v)}`)
    .join(', ');

export function formatImport(r: ImportResult): string {
  const lines = [
    `read ${n(r.read)}, imported ${n(r.imported)}, rejected ${n(r.rejected)}, warnings ${n(r.warnings)} in ${secs(r.durationMs)}` +
      (r.durationMs > 0 ? ` (${n(Math.round(r.read / (r.durationMs / 1000)))} rows/s)` : ''),
  ];
  if (r.rejected) lines.push(`  rejected by field: ${byField(r.rejectedByField)}`);
  if (r.warnings) lines.push(`  warnings by field: ${byField(r.warningsByField)} (imported with the field empty)`);
  if (r.aborted) lines.push(`--strict: ${n(r.rejected)} rejected row(s), nothing imported`);
  lines.push(`report: ${r.errorsPath}`);
  return lines.join('\n');
}

export function formatSeed(r: SeedResult): string {
  const t = r.count;
  const row = (label: string, x: number) => `  ${label.padEnd(22)} ${n(x).padStart(10)}  ${pct(x, t).padStart(7)}`;
  return [
    `seeded ${n(t)} accounts (ids ${n(r.firstId)}..${n(r.lastId)}, seed ${r.seed}) in ${secs(r.durationMs)}` +
      (r.truncated ? `, after deleting ${n(r.truncated)}` : ''),
    row('phone mobile', r.phone.mobile),
    row('phone landline', r.phone.landline),
    row('phone voip', r.phone.voip),
    row('phone type unknown', r.phone.unknownType),
    row('phone missing', r.phone.missing),
    row('phone invalid text', r.phone.invalid),
    row('email valid', r.email.valid),
    row('  plus-tagged', r.email.plusTagged),
    row('  IDN domain', r.email.idn),
    row('email missing', r.email.missing),
    row('email invalid', r.email.invalid),
    row('sms opt-out', r.smsOptOut),
    row('email opt-out', r.emailOptOut),
    row('status active', r.status.active),
    row('status suspended', r.status.suspended),
    row('status closed', r.status.closed),
    row('shared contact', r.sharedContact),
  ].join('\n');
}

export function formatStats(s: AccountStats): string {
  const t = s.total;
  const row = (label: string, x: number) => `  ${label.padEnd(26)} ${n(x).padStart(10)}  ${pct(x, t).padStart(7)}`;
  const group = (title: string, m: Record<string, number>) =>
    Object.entries(m)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => row(`${title} ${k}`, v));
  return [
    `accounts: ${n(t)}`,
    ...group('status', s.status),
    row('phone valid E.164', s.phone.valid),
    row('phone invalid', s.phone.invalid),
    row('phone missing', s.phone.missing),
    ...group('phone type', s.phoneType),
    row('email present', s.email.present),
    row('  of which malformed', s.email.malformed),
    row('email missing', s.email.missing),
    row('sms opt-out', s.smsOptOut),
    row('email opt-out', s.emailOptOut),
    ...group('pin', s.pinAlgo),
    ...group('pin status', s.pinStatus),
  ].join('\n');
}
