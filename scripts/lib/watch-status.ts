// `status --watch`: redraws the run's status every interval until the run ends. On a terminal the
// screen is redrawn in place; piped, each frame is printed after the last (JSON: one line each).
import type { Db } from '../../db/pool';
import { formatStatus, statusJson } from './format-status';
import { RateTracker } from './progress-rate';
import { readRunStatus, settledOf, type RunStatusView } from './run-status';
import type { TemporalClient } from './temporal-client';

export interface WatchOptions {
  intervalMs: number;
  queryTimeoutMs: number;
  json: boolean;
  out?: NodeJS.WriteStream;
  /** Stop after this many frames (tests); default: until the run ends. */
  maxFrames?: number;
}

export async function watchStatus(db: Db, temporal: () => Promise<TemporalClient | { unavailable: string }>, runId: string, o: WatchOptions): Promise<RunStatusView> {
  const out = o.out ?? process.stdout;
  const tty = out.isTTY === true && !o.json;
  const rates = new RateTracker();
  for (let frame = 1; ; frame++) {
    const s = await readRunStatus(db, await temporal(), runId, { queryTimeoutMs: o.queryTimeoutMs });
    const now = Date.now();
    // Only live answers measure the current rate: checkpoints are too coarse.
    if (s.source === 'live') rates.add(now, settledOf(s.counts));
    const rate = s.source === 'live' ? rates.rate() : undefined;
    if (o.json) out.write(`${JSON.stringify(statusJson(s, now, rate))}\n`);
    else out.write(`${tty ? '\x1b[H\x1b[2J' : frame > 1 ? '\n' : ''}${formatStatus(s, now, rate)}\n`);
    if (s.finished || (o.maxFrames !== undefined && frame >= o.maxFrames)) return s;
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
}
