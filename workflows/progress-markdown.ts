// Live status for the Web UI (workflow current details). Pure: counts only, no customer data.
import type { Progress } from './api';

const fmt = (n: number) => n.toLocaleString('en-US');

export function progressMarkdown(p: Progress, nowMs: number): string {
  const c = p.counts;
  const settled = c.sentSms + c.sentEmail + c.unreachable + c.failed + c.skipped;
  const elapsedS = Math.max(1, (nowMs - p.startedAtMs) / 1000);
  const state = p.cancelRequested ? 'cancelling' : p.paused ? `**paused**${p.pauseReason ? ` (${p.pauseReason})` : ''}` : p.phase;
  const lines = [
    `### PIN reset run \`${p.runId}\``,
    `State: ${state} · rate ceiling: ${p.ratePerSecond > 0 ? `${fmt(p.ratePerSecond)} msg/s` : 'unlimited'}`,
    '',
    '| | accounts |',
    '|---|---:|',
    `| planned | ${fmt(c.planned)} |`,
    `| PIN reset | ${fmt(c.reset)} |`,
    `| skipped (closed/deleted) | ${fmt(c.skipped)} |`,
    `| notified by SMS | ${fmt(c.sentSms)} |`,
    `| notified by email | ${fmt(c.sentEmail)} (fell back from SMS: ${fmt(c.fellBack)}) |`,
    `| unreachable | ${fmt(c.unreachable)} |`,
    `| failed | ${fmt(c.failed)} |`,
    `| pending | ${fmt(c.pending)} |`,
    '',
    `Batches: ${fmt(p.batches.planned)} planned, ${fmt(p.batches.reset)} reset, ${fmt(p.batches.notified)} notified, ${p.batches.inFlight} in flight.`,
    `Settled ${fmt(settled)} of ${fmt(c.planned)} in ${Math.round(elapsedS)} s (${fmt(Math.round(settled / elapsedS))}/s).`,
  ];
  if (p.exposureWindowMs !== undefined) lines.push(`Exposure window: every PIN invalidated ${(p.exposureWindowMs / 1000).toFixed(1)} s after start.`);
  return lines.join('\n');
}
