// Live status for the Web UI (workflow current details, `setCurrentDetails`). Pure and
// deterministic (workflow code): counts, states and durations only, never customer data.
// docs/operators.md explains each line; tests/webui.test.ts reads the table rows by their labels.
import { achievedRate, etaSeconds, formatTopErrors, stallSeconds } from '../domain/live-progress';
import type { DeliveryCounts } from '../domain/delivery';
import { rateToNumber } from '../domain/run';
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
  ambiguous: 'parked: may have been sent, being looked up (or held)',
  pending: 'pending',
} as const;

const PHASE_TEXT: Record<Phase, string> = {
  preparing: 'preparing: freezing the cohort',
  canary: 'canary: processing the first accounts only',
  awaiting_approval: 'awaiting approval',
  resetting: 'resetting: invalidating PINs, notifying batch by batch behind them',
  notifying: 'notifying: every PIN is invalidated, customers are being notified',
  confirming_delivery:
    'confirming delivery: every message is out; waiting for the last delivery receipts (bounded by the deadline)',
  draining: 'draining: handing over to a fresh workflow run (continue-as-new)',
  completed: 'completed',
  cancelled: 'cancelled',
  failed: 'failed',
};

/** What the SMS delivery receipts say: one line, undelivered and failed by error code. */
export function deliveryLine(d: DeliveryCounts): string {
  const codes = Object.entries(d.byCode)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, n]) => `${code}: ${fmt(n)}`)
    .join(', ');
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
  return c.skipped + c.sentSms + c.sentEmail + c.unreachable + c.failed + c.notifySkipped + (c.ambiguous ?? 0);
}

const finished = (p: Progress) => p.phase === 'completed' || p.phase === 'cancelled' || p.phase === 'failed';

/** Sending is meant to be going on: the stall warning applies. */
export function sendingExpected(p: Progress): boolean {
  return (
    !finished(p) &&
    !p.paused &&
    !p.cancelRequested &&
    !p.awaitingApproval &&
    p.phase !== 'preparing' &&
    p.phase !== 'draining'
  );
}

function stateLine(p: Progress): string {
  if (p.phase === 'cancelled')
    return `**CANCELLED** (${oneLine(p.endReason ?? 'cancelled')}): accounts not reached stay pending in the ledger`;
  if (p.phase === 'failed') return `**FAILED**: ${oneLine(p.endReason ?? 'the workflow failed')}`;
  if (p.phase === 'completed') return `**${p.phase}**`;
  if (p.cancelRequested)
    return '**cancelling**: sending stops within seconds, nothing new starts; then the run records where it stopped';
  if (p.paused && p.autoPaused) {
    const why = oneLine((p.pauseReason ?? 'failure threshold').replace(/^auto-paused:\s*/, ''));
    return `**paused automatically**: ${why}. Find the cause (provider errors, credentials, template), then signal \`resume\` or \`cancel\`.`;
  }
  if (p.paused)
    return `**paused** (${oneLine(p.pauseReason ?? 'paused by operator')}). Sending stops within seconds; signal \`resume\` to continue.`;
  if (p.awaitingApproval)
    return '**awaiting approval**: the canary batch is done. Check its outcomes below, then send the update `approve` with `{"by": "<you>"}` (or signal `cancel`).';
  return PHASE_TEXT[p.phase];
}

const rateText = (r: number) => (r >= 10 ? fmt(r) : r.toFixed(1));
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/** From the ledger's latest reading: the rate achieved over the last minute, its ETA, accounts in flight. */
function liveLine(p: Progress): string | undefined {
  const live = p.live;
  if (!live) return undefined;
  const rate = achievedRate(live);
  const blocked = p.paused || p.awaitingApproval || p.cancelRequested || p.phase === 'preparing';
  const eta = etaSeconds(live, blocked);
  const etaText = p.paused
    ? `none while paused (${fmt(p.counts.pending)} pending)`
    : p.awaitingApproval
      ? 'none until the canary is approved'
      : p.cancelRequested
        ? 'stopping'
        : eta === undefined
          ? 'estimating (after 30 s of sending)'
          : eta === 0
            ? 'finishing'
            : `about ${formatDuration(eta * 1000)} for ${fmt(p.counts.pending)} pending`;
  return [
    `**Sent**: ${rate === undefined ? '-' : `${rateText(rate)} msg/s`} over the last ${Math.round(live.windowS)} s`,
    `**ETA**: ${etaText}`,
    `**In flight**: ${fmt(live.inFlight)} accounts being sent now`,
  ].join(' · ');
}

/** True durations: start to end (or now), and how much of it was paused. */
function durationText(p: Progress, nowMs: number): string {
  const end = p.finishedAtMs ?? nowMs;
  const paused = p.pausedMs ?? 0;
  return `${formatDuration(Math.max(0, end - p.startedAtMs))} from start to ${p.finishedAtMs !== undefined ? 'end' : 'now'}${paused >= 1000 ? ` (paused ${formatDuration(paused)} of it)` : ''}`;
}

/** Average settle rate since the run started, and the ETA it gives for what is pending. */
function etaLine(p: Progress, nowMs: number): string {
  const elapsedMs = Math.max(0, nowMs - p.startedAtMs - (p.pausedMs ?? 0));
  const settled = settledCount(p);
  const pending = p.counts.pending;
  if (finished(p)) {
    return `**Finished** (${p.phase}): ${fmt(settled)} of ${fmt(p.counts.planned)} accounts settled; ran ${durationText(p, nowMs)}.`;
  }
  const live = liveLine(p);
  if (live) return live;
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
  const redrive = p.cohort === 'redrive';
  const label = (key: keyof typeof PROGRESS_ROWS) =>
    redrive && key === 'reset' ? 'PIN reset (by the source run; not reset again)' : PROGRESS_ROWS[key];
  const row = (key: keyof typeof PROGRESS_ROWS, n: number) => `| ${label(key)} | ${fmt(n)} |`;
  const lines = [
    redrive
      ? `### Redrive run \`${p.runId}\`: notifications only, PINs are not reset again`
      : `### PIN reset run \`${p.runId}\``,
    '',
    `**State**: ${stateLine(p)}`,
    '',
    `**Progress**: ${fmt(settled)} of ${fmt(c.planned)} accounts settled (${pct}%) · **Rate ceiling**: ${p.ratePerSecond !== 'unlimited' ? `${fmt(p.ratePerSecond)} msg/s` : 'unlimited'}`,
    '',
    etaLine(p, nowMs),
  ];
  const stall =
    p.live && sendingExpected(p)
      ? stallSeconds(p.live, { sending: true, ratePerSecond: rateToNumber(p.ratePerSecond), sinceMs: p.sendingSinceMs })
      : undefined;
  if (stall !== undefined) {
    lines.push(
      '',
      `**STALLED**: no provider call for ${formatDuration(stall * 1000)} while ${fmt(c.pending)} accounts are pending. Check the workers (are any running?) and the providers.`,
    );
  }
  if (p.live)
    lines.push('', `Read from the ledger at ${clock(p.live.readAtMs)} UTC (every few seconds while batches run).`);
  lines.push(
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
    row('ambiguous', c.ambiguous ?? 0),
    row('pending', c.pending),
  );
  if (p.live?.topErrors.length) lines.push('', `**Top error codes**: ${formatTopErrors(p.live.topErrors)}`);
  if (p.autoPause) {
    const a = p.autoPause;
    lines.push(
      '',
      `**Auto-pause trigger**: ${fmt(a.failed)} of ${fmt(a.attempts)} attempts failed${a.batch ? ` (tripped in batch ${a.batch.first}..${a.batch.last}, included in the counts above)` : ''}.`,
    );
  }
  if (p.canary > 0) {
    lines.push(
      '',
      `**Canary**: the first ${fmt(p.canary)} accounts are notified first; every PIN is invalidated at once. ${p.approval ? `Approved by ${oneLine(p.approval.by)} at ${new Date(p.approval.atMs).toISOString().replace('T', ' ').slice(0, 19)} UTC.` : p.awaitingApproval ? 'Done: waiting for approval.' : 'In progress: approval is refused until it is done.'}`,
    );
  }
  lines.push(
    '',
    `Batches: ${fmt(p.batches.planned)} planned, ${fmt(p.batches.reset)} reset, ${fmt(p.batches.notified)} notified, ${fmt(p.batches.inFlight)} in flight.`,
  );
  if (p.exposureWindowMs !== undefined) {
    const w =
      p.exposureWindowMs < 60_000 ? `${(p.exposureWindowMs / 1000).toFixed(1)} s` : formatDuration(p.exposureWindowMs);
    lines.push('', `**Exposure window**: every PIN of the cohort was invalidated ${w} after the start.`);
  }
  const d = c.delivery;
  if (d) lines.push('', deliveryLine(d));
  if (p.continuedAsNew > 0)
    lines.push(
      '',
      `Continued as new ${p.continuedAsNew} time(s): the run's earlier history is in the previous executions of this workflow id.`,
    );
  return lines.join('\n');
}
