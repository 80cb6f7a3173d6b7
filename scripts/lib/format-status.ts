// Human-readable and JSON run status. Counts only.
import { formatDuration } from '../../domain/plan';
import { progressBar } from './format';
import { averageRate, etaSeconds } from './progress-rate';
import { settledOf, type RunStatusView } from './run-status';

const n = (x: number) => x.toLocaleString('en-US');
const r1 = (x: number) => Math.round(x * 10) / 10;

export interface StatusNumbers {
  settled: number;
  /** Settled accounts/s: over the last samples with --watch, else averaged since the start. */
  rate?: number;
  rateKind: 'current' | 'average';
  etaSeconds?: number;
}

export function statusNumbers(s: RunStatusView, nowMs: number, currentRate?: number): StatusNumbers {
  const settled = settledOf(s.counts);
  // From a checkpoint, the average runs up to the checkpoint, not up to now.
  const at = s.source === 'live' ? nowMs : Date.parse(s.asOf);
  // Time spent paused is left out, as the workflow's own figures do.
  const since = s.startedAt ? Date.parse(s.startedAt) + (s.pausedMs ?? 0) : undefined;
  const rate = currentRate ?? (s.finished ? undefined : averageRate(settled, since, at));
  const blocked = s.paused || s.awaitingApproval || s.cancelRequested || s.finished;
  return { settled, rate, rateKind: currentRate !== undefined ? 'current' : 'average', etaSeconds: s.finished ? 0 : etaSeconds(s.counts.pending, rate, blocked) };
}

function stateLine(s: RunStatusView): string {
  if (s.finished) return s.phase.toUpperCase();
  if (s.cancelRequested) return 'CANCELLING: batches in flight finish, nothing new starts';
  if (s.paused) return `PAUSED (${s.autoPaused ? 'the run paused itself' : 'by an operator'}): ${s.pauseReason ?? ''} (resume with \`pinreset resume ${s.runId}\`)`;
  if (s.awaitingApproval) return `AWAITING APPROVAL: canary done; check it, then \`pinreset approve ${s.runId}\``;
  return s.status === 'created' ? 'starting' : 'running';
}

export function formatStatus(s: RunStatusView, nowMs: number, currentRate?: number): string {
  const c = s.counts;
  const k = statusNumbers(s, nowMs, currentRate);
  const ago = Math.max(0, Math.round((nowMs - Date.parse(s.asOf)) / 1000));
  const source = s.source === 'live'
    ? 'live (progress query)'
    : s.source === 'final'
      ? 'final record in PostgreSQL'
      : `last checkpoint in PostgreSQL, ${s.asOf} (${formatDuration(ago)} ago): ${s.fallbackReason ?? 'no live answer'}`;
  const rate = k.rate === undefined ? '-' : `${r1(k.rate)}/s ${k.rateKind === 'current' ? 'now' : `average since start${s.pausedMs ? ', pauses left out' : ''}`}`;
  const eta = s.finished ? 'done' : k.etaSeconds === undefined ? (s.paused ? 'none while paused' : s.awaitingApproval ? 'none until approved' : 'unknown') : formatDuration(k.etaSeconds);
  const lines = [
    `Run ${s.runId}  [${source}]`,
    `  state    : ${stateLine(s)}  (phase ${s.phase}, status ${s.status})`,
    `  progress : ${progressBar(k.settled, c.planned)}  ${n(k.settled)} of ${n(c.planned)} settled`,
    `  outcomes : reset ${n(c.reset)} (skipped ${n(c.skipped)}) | sms ${n(c.sentSms)} | email ${n(c.sentEmail)} (fell back ${n(c.fellBack)}) | unreachable ${n(c.unreachable)} | failed ${n(c.failed)} | notify-skipped ${n(c.notifySkipped)} | pending ${n(c.pending)}`,
    `  rate     : ${rate}; ceiling ${s.ratePerSecond !== 'unlimited' ? `${n(s.ratePerSecond)} msg/s` : 'unlimited'}; ETA ${eta}`,
  ];
  const d = c.delivery;
  if (d) {
    const codes = Object.entries(d.byCode).sort(([a], [b]) => a.localeCompare(b)).map(([code, x]) => `${code} ${n(x)}`).join(', ');
    lines.push(`  delivery : delivered ${n(d.delivered)} | undelivered ${n(d.undelivered)} | failed ${n(d.failed)}${codes ? ` (${codes})` : ''} | unknown ${n(d.unknown)} | no final receipt yet ${n(d.accepted + d.sent)} | fell back after receipt ${n(d.fellBackAfterReceipt)}`);
  }
  if (s.batches) lines.push(`  batches  : ${n(s.batches.planned)} planned, ${n(s.batches.reset)} reset, ${n(s.batches.notified)} notified, ${n(s.batches.inFlight)} in flight`);
  if (s.exposureWindowMs !== undefined) lines.push(`  exposure : every PIN invalidated ${formatDuration(s.exposureWindowMs / 1000)} after the start`);
  lines.push(`  run      : reason ${s.reason}; operator ${s.operator}; started ${s.startedAt ?? '-'}${s.finishedAt ? `; finished ${s.finishedAt}` : ''}`);
  return lines.join('\n');
}

export function statusJson(s: RunStatusView, nowMs: number, currentRate?: number): Record<string, unknown> {
  const k = statusNumbers(s, nowMs, currentRate);
  return {
    ...s,
    settled: k.settled,
    rate: k.rate === undefined ? null : r1(k.rate),
    rateKind: k.rateKind,
    etaSeconds: k.etaSeconds === undefined ? null : Math.round(k.etaSeconds),
  };
}
