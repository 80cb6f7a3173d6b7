// Human-readable and JSON run status. Counts only.
import { formatDuration } from '../domain/plan';
import { rateToNumber } from '../domain/run';
import { achievedRate, etaSeconds as liveEta, formatTopErrors, stallSeconds } from '../domain/live-progress';
import { progressBar } from '../run-api/format-progress';
import { averageRate, etaSeconds } from '../domain/progress-rate';
import { settledOf, type RunStatusView } from '../run-api/run-status';

const n = (x: number) => x.toLocaleString('en-US');
const r1 = (x: number) => Math.round(x * 10) / 10;
const utc = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export interface StatusNumbers {
  settled: number;
  /** Messages/s sent over the last minute (from the ledger); else settled accounts/s averaged since the start. */
  rate?: number;
  rateKind: 'last_minute' | 'average';
  etaSeconds?: number;
  /** Seconds without a provider call while the run should be sending (a stall), if so. */
  stalledSeconds?: number;
}

/** The run should be sending now: a stall warning applies. */
function sendingExpected(s: RunStatusView): boolean {
  return (
    !s.finished &&
    !s.paused &&
    !s.cancelRequested &&
    !s.awaitingApproval &&
    s.status !== 'created' &&
    !['preparing', 'draining'].includes(s.phase)
  );
}

export function statusNumbers(s: RunStatusView, nowMs: number): StatusNumbers {
  const settled = settledOf(s.counts);
  const blocked = s.paused || s.awaitingApproval || s.cancelRequested || s.finished;
  if (s.live) {
    const stalled = sendingExpected(s)
      ? stallSeconds(s.live, { sending: true, ratePerSecond: rateToNumber(s.ratePerSecond), sinceMs: s.sendingSinceMs })
      : undefined;
    return {
      settled,
      rate: s.finished ? undefined : achievedRate(s.live),
      rateKind: 'last_minute',
      etaSeconds: s.finished ? 0 : liveEta(s.live, blocked),
      stalledSeconds: stalled,
    };
  }
  // From a checkpoint, the average runs up to the checkpoint, not up to now.
  const at = s.source === 'live' ? nowMs : Date.parse(s.asOf);
  // Time spent paused is left out, as the workflow's own figures do.
  const since = s.startedAt ? Date.parse(s.startedAt) + (s.pausedMs ?? 0) : undefined;
  const rate = s.finished ? undefined : averageRate(settled, since, at);
  return {
    settled,
    rate,
    rateKind: 'average',
    etaSeconds: s.finished ? 0 : etaSeconds(s.counts.pending, rate, blocked),
  };
}

function stateLine(s: RunStatusView): string {
  if (s.finished) return `${s.phase.toUpperCase()}${s.endReason && s.phase !== 'completed' ? ` (${s.endReason})` : ''}`;
  if (s.cancelRequested)
    return `CANCELLING${s.endReason ? ` (${s.endReason})` : ''}: sending stops within seconds, nothing new starts`;
  if (s.paused)
    return `PAUSED (${s.autoPaused ? 'the run paused itself' : 'by an operator'}): ${s.pauseReason ?? ''} (resume with \`pinreset resume ${s.runId}\`)`;
  if (s.awaitingApproval) return `AWAITING APPROVAL: canary done; check it, then \`pinreset approve ${s.runId}\``;
  return s.status === 'created' ? 'starting' : 'running';
}

export function formatStatus(s: RunStatusView, nowMs: number): string {
  const c = s.counts;
  const k = statusNumbers(s, nowMs);
  const ago = Math.max(0, Math.round((nowMs - Date.parse(s.asOf)) / 1000));
  const source =
    s.source === 'live'
      ? 'live (progress query)'
      : s.source === 'final'
        ? 'final record in PostgreSQL'
        : `last checkpoint in PostgreSQL, ${s.asOf} (${formatDuration(ago)} ago): ${s.fallbackReason ?? 'no live answer'}`;
  const reading = s.live ? `; counts from the ledger at ${utc(s.live.readAtMs)} UTC` : '';
  const ceiling = s.ratePerSecond !== 'unlimited' ? `${n(s.ratePerSecond)} msg/s` : 'unlimited';
  const rate =
    k.rate === undefined
      ? '-'
      : k.rateKind === 'last_minute'
        ? `${r1(k.rate)} msg/s sent over the last ${Math.round(s.live!.windowS)} s`
        : `${r1(k.rate)}/s average since start${s.pausedMs ? ', pauses left out' : ''}`;
  const eta = s.finished
    ? 'done'
    : k.etaSeconds === undefined
      ? s.paused
        ? 'none while paused'
        : s.awaitingApproval
          ? 'none until approved'
          : s.cancelRequested
            ? 'stopping'
            : 'unknown'
      : formatDuration(k.etaSeconds);
  const lines = [
    `Run ${s.runId}  [${source}${reading}]`,
    `  state    : ${stateLine(s)}  (phase ${s.phase}, status ${s.status})`,
  ];
  if (s.workflowProblem) lines.push(`  PROBLEM  : ${s.workflowProblem}`);
  if (k.stalledSeconds !== undefined) {
    lines.push(
      `  STALLED  : no provider call for ${formatDuration(k.stalledSeconds)} while ${n(c.pending)} accounts are pending: are workers running? are the providers answering?`,
    );
  }
  lines.push(
    `  progress : ${progressBar(k.settled, c.planned)}  ${n(k.settled)} of ${n(c.planned)} settled`,
    `  outcomes : ${s.cohortKind === 'redrive' ? 'PINs reset by the source run, not again' : `reset ${n(c.reset)} (skipped ${n(c.skipped)})`} | sms ${n(c.sentSms)} | email ${n(c.sentEmail)} (fell back ${n(c.fellBack)}) | unreachable ${n(c.unreachable)} | failed ${n(c.failed)} | notify-skipped ${n(c.notifySkipped)} | pending ${n(c.pending)} | ambiguous ${n(c.ambiguous ?? 0)}`,
    `  rate     : ${rate}; ceiling ${ceiling}; ETA ${eta}`,
  );
  if (s.live && !s.finished)
    lines.push(`  in flight: ${n(s.live.inFlight)} accounts being sent now (claimed, not settled)`);
  if (s.live?.topErrors.length) lines.push(`  errors   : ${formatTopErrors(s.live.topErrors)}`);
  if (s.autoPause) {
    const a = s.autoPause;
    lines.push(
      `  trigger  : ${n(a.failed)} of ${n(a.attempts)} attempts failed${a.batch ? ` (tripped in batch ${a.batch.first}..${a.batch.last}, counted above)` : ''}`,
    );
  }
  if (s.canary > 0) {
    lines.push(
      `  canary   : first ${n(s.canary)} accounts notified first (every PIN invalidated at once); ${s.approval ? `approved by ${s.approval.by} at ${utc(s.approval.atMs)} UTC` : s.awaitingApproval ? 'done, waiting for approval' : s.finished ? 'never approved' : 'in progress (approve is refused until it is done)'}`,
    );
  }
  const d = c.delivery;
  if (d) {
    const codes = Object.entries(d.byCode)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([code, x]) => `${code} ${n(x)}`)
      .join(', ');
    lines.push(
      `  delivery : delivered ${n(d.delivered)} | undelivered ${n(d.undelivered)} | failed ${n(d.failed)}${codes ? ` (${codes})` : ''} | unknown ${n(d.unknown)} | no final receipt yet ${n(d.accepted + d.sent)} | fell back after receipt ${n(d.fellBackAfterReceipt)}`,
    );
  }
  if (s.batches)
    lines.push(
      `  batches  : ${n(s.batches.planned)} planned, ${n(s.batches.reset)} reset, ${n(s.batches.notified)} notified, ${n(s.batches.inFlight)} in flight`,
    );
  if (s.exposureWindowMs !== undefined)
    lines.push(`  exposure : every PIN invalidated ${formatDuration(s.exposureWindowMs / 1000)} after the start`);
  const ran = s.startedAt
    ? `; ran ${formatDuration(((s.finishedAt ? Date.parse(s.finishedAt) : nowMs) - Date.parse(s.startedAt)) / 1000)}${s.pausedMs ? ` (paused ${formatDuration(s.pausedMs / 1000)})` : ''}`
    : '';
  lines.push(
    `  run      : reason ${s.reason}; operator ${s.operator}; started ${s.startedAt ?? '-'}${s.finishedAt ? `; finished ${s.finishedAt}` : ''}${ran}`,
  );
  if (s.sourceRunId) lines.push(`  redrive  : of run ${s.sourceRunId} (notifications only; PINs not reset again)`);
  return lines.join('\n');
}

export function statusJson(s: RunStatusView, nowMs: number): Record<string, unknown> {
  const k = statusNumbers(s, nowMs);
  return {
    ...s,
    settled: k.settled,
    rate: k.rate === undefined ? null : r1(k.rate),
    rateKind: k.rateKind,
    etaSeconds: k.etaSeconds === undefined ? null : Math.round(k.etaSeconds),
    inFlight: s.live ? s.live.inFlight : null,
    stalledSeconds: k.stalledSeconds === undefined ? null : Math.round(k.stalledSeconds),
  };
}
