// Human-readable plan. Counts only.
import { formatDuration } from '../domain/plan';
import type { CohortPlan } from '../run-api/plan-cohort';

const n = (x: number) => x.toLocaleString('en-US');
const pct = (x: number, of: number) => (of > 0 ? `${((100 * x) / of).toFixed(1)}%` : '-');

export function formatPlan(p: CohortPlan, title = 'Plan (nothing was changed)'): string {
  const c = p.cohort;
  const what = c.kind === 'all_active' ? 'every account not closed or deleted' : `accounts listed in ${c.file}`;
  const out = [
    title,
    `  cohort        : ${n(c.accounts)} accounts (${what})${c.duplicates ? `; ${n(c.duplicates)} repeated id(s) in the file counted once` : ''}`,
  ];
  if (c.unknown)
    out.push(
      `  unknown ids   : ${n(c.unknown)} not in the accounts table (line ${c.unknownLines.join(', ')}${c.unknown > c.unknownLines.length ? ', ...' : ''}); start refuses them unless --allow-unknown`,
    );
  out.push(
    `  PIN resets    : ${n(p.resets)}  (not reset: closed ${n(p.skipped.closed)}, deleted ${n(p.skipped.deleted)}, unknown ${n(p.skipped.unknown)})`,
    `  channels      : SMS ${n(p.channels.sms)} (${pct(p.channels.sms, p.resets)})  email ${n(p.channels.email)} (${pct(p.channels.email, p.resets)})  unreachable ${n(p.channels.unreachable)} (${pct(p.channels.unreachable, p.resets)})  [policy ${p.params.policy}]`,
  );
  const reasons = Object.entries(p.channels.unreachableByReason).sort((a, b) => b[1] - a[1]);
  if (reasons.length) out.push(`  unreachable   : ${reasons.map(([r, k]) => `${r} ${n(k)}`).join(', ')}`);
  out.push(`  batches       : ${n(p.batches)} of up to ${n(p.params.batchSize)} accounts`);
  if (p.canaryAccounts) {
    out.push(
      `  canary        : gates notifications, not resets: every PIN is invalidated at once; the first ${n(p.canaryAccounts)} accounts are notified, the rest waits for \`approve\``,
    );
  }
  out.push(
    `  duration      : ${
      p.notifySeconds !== undefined
        ? `about ${formatDuration(p.notifySeconds)} to send ${n(p.messages)} messages at ${p.params.ratePerSecond === 'unlimited' ? 'an unlimited rate' : `${n(p.params.ratePerSecond)}/s`} (at least; SMS failures that fall back to email add messages)`
        : `${n(p.messages)} messages at an unlimited rate: set by the providers and workers`
    }`,
    `  scanned       : ${n(p.scan.accounts)} accounts in ${formatDuration(p.scan.ms / 1000)} (${n(p.scan.perSecond)}/s; ${formatDuration(p.scan.dbMs / 1000)} in PostgreSQL; ${n(p.scan.pages)} pages of up to ${n(p.scan.pageSize)}; peak RSS ${p.scan.peakRssMb} MB)`,
  );
  return out.join('\n');
}
