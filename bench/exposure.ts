// --exposure: the pipeline throttled to a provider rate; time from start to the last PIN invalidated.
import { DEFAULT_PARAMS } from '../domain/run';
import { fmt, freshData, loadAverage, mb, peakRssBytes as peakOf, s1 } from './support';
import { opts } from './options';
import { log, sentSoFar, stopRun, ticker, type Bench } from './harness';
import { finishPipeline, hotShare, ledgerUpdates, startPipeline } from './contenders';

export async function exposureMode(b: Bench): Promise<Record<string, unknown>> {
  const accounts = opts.accounts ?? 850_000;
  const rate = opts.rate ?? 100;
  const { seedMs } = await freshData(b.db, accounts);
  log(
    `Seeded ${fmt(accounts)} accounts in ${s1(seedMs)} s; starting the pipeline at ${rate} msg/s... (load ${loadAverage()})`,
  );
  const upd0 = await ledgerUpdates(b.db);
  const p = await startPipeline(b, { ratePerSecond: rate });
  const stopTicker = ticker(b, 'exposure', () => Math.max(...p.workers.map((w) => peakOf(w.pid) ?? 0)));
  let row: { started_at: Date; resets_done_at: Date; window_ms: number } | undefined;
  for (;;) {
    const { rows } = await b.db.query<{ started_at: Date; resets_done_at: Date | null; window_ms: number }>(
      `SELECT started_at, resets_done_at, extract(epoch FROM resets_done_at - started_at) * 1000 AS window_ms FROM runs WHERE id = $1`,
      [p.runId],
    );
    if (rows[0]?.resets_done_at) {
      row = rows[0] as typeof row;
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const seenAtMs = Date.now() - p.started;
  stopTicker();
  const messagesBeforeStop = sentSoFar(b);
  // The freeze in chunks (migration 012): start to cohort_frozen_at; and the reset updates' HOT share.
  const frozen = await b.db.query<{ s: number }>(
    'SELECT extract(epoch FROM cohort_frozen_at - started_at) AS s FROM runs WHERE id = $1',
    [p.runId],
  );
  const updates = hotShare(upd0, await ledgerUpdates(b.db));
  log(
    `  cohort frozen after ${frozen.rows[0]?.s ?? '?'} s; ledger updates to here: ${JSON.stringify(updates)} (load ${loadAverage()})`,
  );
  log(`  every PIN reset after ${s1(row!.window_ms)} s (runs.resets_done_at - started_at); stopping the run...`);
  const result = await stopRun(p.handle);
  const stoppedAfterMs = Date.now() - p.started;
  const r = await finishPipeline(b, p, result, stoppedAfterMs);
  const out = {
    mode: 'exposure',
    accounts,
    cohort: r.cohort,
    ratePerSecond: rate,
    batchSize: opts.batchSize,
    resetConcurrency: opts.resetConcurrency ?? DEFAULT_PARAMS.resetConcurrency,
    exposureWindowS: s1(Math.round(row!.window_ms)),
    exposureWindowFromResultS: result?.exposureWindowMs !== undefined ? s1(result.exposureWindowMs) : null,
    startToResetsDoneSeenS: s1(seenAtMs),
    messagesSentDuringResets: messagesBeforeStop,
    cohortFrozenAfterS: frozen.rows[0]?.s ?? null,
    ...updates,
    runStatus: result?.status ?? 'terminated',
    stopTookS: s1(stoppedAfterMs - seenAtMs),
    workerPeakRssMB: mb(r.peakRssBytes),
    target: { exposureWindowS: 60, met: row!.window_ms <= 60_000 },
  };
  console.log(
    `\nExposure window: ${fmt(r.cohort)} cohort accounts, notifications at ${rate} msg/s, batch ${opts.batchSize}, ${out.resetConcurrency} reset batches in flight`,
  );
  console.log(
    `  start to last PIN invalidated: ${out.exposureWindowS} s (runs.resets_done_at - runs.started_at; workflow result: ${out.exposureWindowFromResultS} s)`,
  );
  console.log(
    `  seen by the bench after       : ${out.startToResetsDoneSeenS} s from startRun (includes workflow start and cohort freeze)`,
  );
  console.log(`  messages sent meanwhile       : ${fmt(messagesBeforeStop)}`);
  console.log(
    `  run then stopped (${out.runStatus}) in ${out.stopTookS} s; target <= 60 s: ${out.target.met ? 'met' : 'NOT met'}`,
  );
  return out;
}
