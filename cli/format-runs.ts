// `list`: recent runs as a table. Counts only.
import type { RunListRow } from '../db/sql/list-runs';

const n = (x: number | undefined) => (x === undefined ? '-' : x.toLocaleString('en-US'));
const when = (d: Date | null) => (d ? d.toISOString().replace('T', ' ').slice(0, 19) : '-');

export function runListJson(r: RunListRow): Record<string, unknown> {
  return {
    id: r.id,
    status: r.status,
    statusReason: r.statusReason,
    cohortKind: r.cohortKind,
    phase: r.phase,
    planned: r.planned,
    counts: r.counts,
    createdAt: r.createdAt.toISOString(),
    startedAt: r.startedAt?.toISOString() ?? null,
    finishedAt: r.finishedAt?.toISOString() ?? null,
    reason: r.reason,
    operator: r.operator,
    paused: r.status === 'paused',
    settledPercent: progressPercent(r) ?? null,
    sourceRunId: r.sourceRunId,
  };
}

/** Settled share of the cohort at the last checkpoint, percent. */
function progressPercent(r: RunListRow): number | undefined {
  const c = r.counts;
  if (!c || c.planned === 0) return undefined;
  return Math.floor((1000 * (c.planned - c.pending)) / c.planned) / 10;
}

export function formatRunList(rows: RunListRow[]): string {
  if (rows.length === 0) return 'No runs yet.';
  const header = [
    'RUN',
    'STATUS',
    'PHASE',
    'COHORT',
    'PROGRESS',
    'PLANNED',
    'SENT',
    'UNREACH',
    'FAILED',
    'PENDING',
    'STARTED (UTC)',
    'OPERATOR',
    'REASON',
  ];
  const table = rows.map((r) => {
    const c = r.counts ?? undefined;
    const pct = progressPercent(r);
    return [
      r.id,
      r.status,
      r.phase ?? '-',
      r.cohortKind,
      pct === undefined ? '-' : `${pct.toFixed(1)}%`,
      n(c?.planned ?? r.planned),
      n(c ? c.sentSms + c.sentEmail : undefined),
      n(c?.unreachable),
      n(c?.failed),
      n(c?.pending),
      when(r.startedAt ?? r.createdAt),
      r.operator,
      r.reason,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const fmt = (row: string[]) => row.map((v, i) => (i === row.length - 1 ? v : v.padEnd(widths[i]))).join('  ');
  const notes = rows.flatMap((r) => [
    ...(r.statusReason ? [`  ${r.id}: ${r.status} (${r.statusReason})`] : []),
    ...(r.sourceRunId ? [`  ${r.id}: redrive of ${r.sourceRunId}`] : []),
  ]);
  return [fmt(header), ...table.map(fmt), ...(notes.length ? ['', ...notes] : [])].join('\n');
}
