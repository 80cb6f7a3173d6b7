// `status --watch`: redraws the run's status every interval until the run ends, each frame
// stamped with the time of its reading. On a terminal the screen is redrawn in place; piped, each
// frame is printed after the last (JSON: one line each). The last line says how the run ended.
import type { Db } from '../db/pool';
import { formatStatus, statusJson } from './format-status';
import { readRunStatus, type RunStatusView } from '../run-api/run-status';
import type { TemporalClient } from '../run-api/temporal-client';

export interface WatchOptions {
  intervalMs: number;
  queryTimeoutMs: number;
  json: boolean;
  out?: NodeJS.WriteStream;
  /** Stop after this many frames (tests); default: until the run ends. */
  maxFrames?: number;
}

/** The closing line of a watch: how the run ended. */
export function endLine(s: RunStatusView): string {
  if (s.status === 'completed' || s.phase === 'completed') return `Run ${s.runId} completed.`;
  const why = s.endReason ? `: ${s.endReason}` : '';
  if (s.status === 'cancelled' || s.phase === 'cancelled')
    return `Run ${s.runId} was CANCELLED${why}. Accounts not reached stay pending: \`pinreset report ${s.runId} --outcome pending\`.`;
  return `Run ${s.runId} FAILED${why}.`;
}

export async function watchStatus(
  db: Db,
  temporal: () => Promise<TemporalClient | { unavailable: string }>,
  runId: string,
  o: WatchOptions,
): Promise<RunStatusView> {
  const out = o.out ?? process.stdout;
  const tty = out.isTTY === true && !o.json;
  for (let frame = 1; ; frame++) {
    const s = await readRunStatus(db, await temporal(), runId, { queryTimeoutMs: o.queryTimeoutMs });
    const now = Date.now();
    const stamp = `${new Date(now).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
    if (o.json) out.write(`${JSON.stringify({ ...statusJson(s, now), readingAt: new Date(now).toISOString() })}\n`);
    else out.write(`${tty ? '\x1b[H\x1b[2J' : frame > 1 ? '\n' : ''}[${stamp}] ${formatStatus(s, now)}\n`);
    if (s.finished) {
      if (!o.json) out.write(`${endLine(s)}\n`);
      return s;
    }
    if (o.maxFrames !== undefined && frame >= o.maxFrames) return s;
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
}
