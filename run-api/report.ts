// `report`: per-account outcomes of a run as CSV or JSON Lines, streamed page by page (keyset on
// the ledger's key), so memory does not grow with the run. Ledger fields only: no phone number,
// email address or name ever appears.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { Db } from '../db/pool';
import { readReportPage, type ReportOutcome, type ReportRow } from '../db/sql/read-report-page';
import { readRun } from '../db/sql/read-run';
import { UnknownRunError, UsageError } from './errors';

export type ReportFormat = 'csv' | 'jsonl';
export const REPORT_FORMATS: readonly ReportFormat[] = ['csv', 'jsonl'];

export const REPORT_COLUMNS = [
  'account_id',
  'outcome',
  'channel',
  'fell_back',
  'provider_message_id',
  'error_code',
  'reset_at',
  'notified_at',
  'attempts',
  'resolved_by',
  'delivery_state',
  'delivery_code',
  'delivery_at',
  'delivery_action',
] as const;

const REPORT_PAGE = 5_000;

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function values(r: ReportRow): (string | number | boolean | null)[] {
  return [
    r.accountId,
    r.outcome,
    r.channel,
    r.fellBack,
    r.providerMessageId,
    r.errorCode,
    r.resetAt?.toISOString() ?? null,
    r.notifiedAt?.toISOString() ?? null,
    r.attempts,
    r.resolvedBy,
    r.deliveryState,
    r.deliveryCode,
    r.deliveryAt?.toISOString() ?? null,
    r.deliveryAction,
  ];
}

export function csvLine(r: ReportRow): string {
  return values(r)
    .map((v) => (v === null ? '' : csvField(String(v))))
    .join(',');
}

export function jsonLine(r: ReportRow): string {
  const v = values(r);
  return JSON.stringify(Object.fromEntries(REPORT_COLUMNS.map((c, i) => [c, v[i]])));
}

async function write(out: Writable, chunk: string): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

export async function writeReport(
  db: Db,
  runId: string,
  out: Writable,
  opts: { format: ReportFormat; outcomes?: ReportOutcome[] },
): Promise<number> {
  if (!(await readRun(db, runId))) throw new UnknownRunError(runId);
  const line = opts.format === 'csv' ? csvLine : jsonLine;
  if (opts.format === 'csv') await write(out, `${REPORT_COLUMNS.join(',')}\n`);
  let rows = 0;
  for (let after = 0; Number.isFinite(after);) {
    const page = await readReportPage(db, runId, after, REPORT_PAGE, opts.outcomes);
    if (page.rows.length) await write(out, `${page.rows.map(line).join('\n')}\n`);
    rows += page.rows.length;
    after = page.windowEnd;
  }
  return rows;
}

/**
 * Writes the report to a file: first to FILE.partial, renamed when complete, so a report that
 * failed halfway is never mistaken for a whole one.
 */
export async function writeReportFile(
  db: Db,
  runId: string,
  file: string,
  opts: { format: ReportFormat; outcomes?: ReportOutcome[] },
): Promise<number> {
  const partial = `${file}.partial`;
  const out = createWriteStream(partial, { flags: 'w', mode: 0o600 });
  try {
    await once(out, 'open');
  } catch (err) {
    throw new UsageError(
      `cannot write report file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    const rows = await writeReport(db, runId, out, opts);
    out.end();
    await once(out, 'finish');
    await rename(partial, file);
    return rows;
  } catch (err) {
    out.destroy();
    await rm(partial, { force: true });
    throw err;
  }
}
