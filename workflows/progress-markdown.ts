// Live status for the Web UI (workflow current details, `setCurrentDetails`). Pure and
// deterministic (workflow code): counts, states and durations only, never customer data.
// docs/operators.md explains each line; tests/webui.test.ts reads the table rows by their labels.
import type { DeliveryCounts } from '../domain/delivery';
import type { Phase, Progress } from './api';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Labels of the outcome table, in order; the test and docs/operators.md rely on them. */
export const PROGRESS_ROWS = {
  planned: 'planned (cohort)',
  reset: 'PIN reset',
  skipped: 'skipped (closed/deleted before reset)',
  sentSms: 'notified by SMS',
  sentEmail: 'notified by email',
  fellBack: 'of which fell back from SMS to email',
  unreachable: 'unreachable (no usable contact)',
  failed: 'failed',
  notifySkipped: 'not notified (closed/deleted after reset)',
  pending: 'pending',
} as const;

const PHASE_TEXT: Record<Phase, string> = {
  preparing: 'preparing: freezing the cohort',
  canary: 'canary: processing the first accounts only',
  awaiting_approval: 'awaiting approval',
  resetting: 'resetting: invalidating PINs, notifying batch by batch behind them',
  notifying: 'notifying: every PIN is invalidated, customers are being notified',
  confirming_delivery: 'confirming delivery: every message is out; waiting for the last delivery receipts (bounded by the deadline)',
  draining: 'draining: handing over to a fresh workflow run (continue-as-new)',
  completed: 'completed',
  cancelled: 'cancelled',
};

/** What the SMS delivery receipts say: one line, undelivered and failed by error code. */
export function deliveryLine(d: DeliveryCounts): string {
  const codes = Object.entries(d.byCode).sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => `${code}: ${fmt(n)}`).join(', ');
  return `**Delivery receipts**: ${fmt(d.delivered)} delivered · ${fmt(d.undelivered)} undelivered · ${fmt(d.failed)} failed${codes ? ` (${codes})` : ''} · ${fmt(d.unknown)} unknown (no receipt by the deadline) · ${fmt(d.accepted + d.sent)} sent, no final receipt yet (emails stay here: the relay's acceptance) · ${fmt(d.fellBackAfterReceipt)} fell back to email after a receipt`;
}

/** "2 h 05 min", "4 min 10 s", "35 s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${String(h % 24).padStart(2, '0')} h`;
}

/** One line for free text (pause reasons): Markdown tables and headings must not break. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/\|/g, '/').trim().slice(0, 300);
}

export function settledCount(p: Progress): number {
  const c = p.counts;
  return c.skipped + c.sentSms + c.sentEmail + c.unreachable + c.failed + c.notifySkipped;
}

function stateLine(p: Progress): string {
  if (p.phase === 'completed' || p.phase === 'cancelled') return `**${p.phase}**`;
  if (p.cancelRequested) return '**cancelling**: no new batches; batches in flight finish, then the run records where it stopped';
  if (p.paused && p.autoPaused) {
    const why = oneLine((p.pauseReason ?? 'failure threshold').replace(/^auto-paused:\s*/, ''));
    return `**paused automatically**: ${why}. Find the cause (provider errors, credentials, template), then signal \`resume\` or \`cancel\`.`;
  }
  if (p.paused) return `**paused** (${oneLine(p.pauseReason ?? 'paused by operator')}). Batches in flight finish; signal \`resume\` to continue.`;
  if (p.awaitingApproval) return '**awaiting approval**: the canary batch is done. Check its outcomes below, then signal `approve` (or `cancel`).';
  return PHASE_TEXT[p.phase];
}

/** Average settle rate since the run started, and the ETA it gives for what is pending. */
function etaLine(p: Progress, nowMs: number): string {
  const elapsedMs = Math.max(0, nowMs - p.startedAtMs - (p.pausedMs ?? 0));
  const settled = settledCount(p);
  const pending = p.counts.pending;
  if (p.phase === 'completed' || p.phase === 'cancelled') {
    return `**Finished**: ${fmt(settled)} of ${fmt(p.counts.planned)} accounts settled in ${formatDuration(elapsedMs)}.`;
  }
  const observed = elapsedMs >= 1000 ? settled / (elapsedMs / 1000) : 0;
  const throughput = `**Throughput**: ${observed > 0 ? `${observed >= 10 ? fmt(observed) : observed.toFixed(1)} accounts/s` : '-'} (average since start)`;
  let eta: string;
  if (p.paused) eta = `none while paused (${fmt(pending)} pending)`;
  else if (p.awaitingApproval) eta = 'none until the canary is approved';
  else if (p.cancelRequested) eta = 'stopping';
  else if (p.phase === 'preparing' || p.counts.planned === 0) eta = 'after the cohort is frozen';
  else if (pending === 0) eta = 'finishing';
  else if (observed <= 0) eta = 'estimating (nothing settled yet)';
  else {
    // The ceiling bounds what comes next (a lowered rate); the observed average is the
    // conservative guess after a raise (unreachable accounts settle without a message).
    const effective = p.ratePerSecond !== 'unlimited' ? Math.min(observed, p.ratePerSecond) : observed;
    eta = `about ${formatDuration((pending / effective) * 1000)} for ${fmt(pending)} pending`;
  }
  return `${throughput} · **ETA**: ${eta}`;
}

export function progressMarkdown(p: Progress, nowMs: number): string {
  const c = p.counts;
  const settled = settledCount(p);
  const pct = c.planned > 0 ? Math.floor((100 * settled) / c.planned) : 0;
  const row = (key: keyof typeof PROGRESS_ROWS, n: number) => `| ${PROGRESS_ROWS[key]} | ${fmt(n)} |`;
  const lines = [
    `### PIN reset run \`${p.runId}\``,
    '',
    `**State**: ${stateLine(p)}`,
    '',
    `**Progress**: ${fmt(settled)} of ${fmt(c.planned)} accounts settled (${pct}%) · **Rate ceiling**: ${p.ratePerSecond !== 'unlimited' ? `${fmt(p.ratePerSecond)} msg/s` : 'unlimited'}`,
    '',
    etaLine(p, nowMs),
    '',
    '| Outcome | Accounts |',
    '|---|---:|',
    row('planned', c.planned),
    row('reset', c.reset),
    row('skipped', c.skipped),
    row('sentSms', c.sentSms),
    row('sentEmail', c.sentEmail),
    row('fellBack', c.fellBack),
    row('unreachable', c.unreachable),
    row('failed', c.failed),
    row('notifySkipped', c.notifySkipped),
    row('pending', c.pending),
    '',
    `Batches: ${fmt(p.batches.planned)} planned, ${fmt(p.batches.reset)} reset, ${fmt(p.batches.notified)} notified, ${fmt(p.batches.inFlight)} in flight.`,
  ];
  if (p.exposureWindowMs !== undefined) {
    const w = p.exposureWindowMs < 60_000 ? `${(p.exposureWindowMs / 1000).toFixed(1)} s` : formatDuration(p.exposureWindowMs);
    lines.push('', `**Exposure window**: every PIN of the cohort was invalidated ${w} after the start.`);
  }
  const d = c.delivery;
  if (d) lines.push('', deliveryLine(d));
  if (p.continuedAsNew > 0) lines.push('', `Continued as new ${p.continuedAsNew} time(s): the run's earlier history is in the previous executions of this workflow id.`);
  return lines.join('\n');
}
