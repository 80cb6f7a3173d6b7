// --scale: the pipeline at several sizes: wall time, database growth, history events.
import { fmt, freshData, loadAverage, mb, relationSizes, s1 } from './support';
import { opts } from './options';
import { log, type Bench } from './harness';
import { runPipelineToEnd } from './contenders';

export async function scaleMode(b: Bench): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown>[] = [];
  for (const size of opts.scale!) {
    const { seedMs } = await freshData(b.db, size);
    const sizeBefore = await relationSizes(b.db);
    log(`Seeded ${fmt(size)} accounts in ${s1(seedMs)} s; running the pipeline... (load ${loadAverage()})`);
    const r = await runPipelineToEnd(b);
    const sizeAfter = await relationSizes(b.db);
    const h = r.history!;
    rows.push({
      accounts: size,
      cohort: r.cohort,
      wallS: s1(r.wallMs),
      msPerAccount: +(r.wallMs / r.cohort).toFixed(4),
      messagesPerS: Math.round((r.sentSms + r.sentEmail) / (r.wallMs / 1000)),
      ledgerGrowthMB: mb(sizeAfter.ledger - sizeBefore.ledger),
      checkpointsGrowthKB: Math.round((sizeAfter.checkpoints - sizeBefore.checkpoints) / 1024),
      accountsGrowthMB: mb(sizeAfter.accounts - sizeBefore.accounts),
      ledgerBytesPerAccount: Math.round((sizeAfter.ledger - sizeBefore.ledger) / r.cohort),
      historyEvents: h.events,
      eventsPerRun: h.eventsPerRun,
      continuedAsNew: h.continuedAsNew,
      eventsPer1000Accounts: +((1000 * h.events) / r.cohort).toFixed(2),
      actionsPerAccount: +(h.actions / r.cohort).toFixed(5),
      maxHistoryKB: Math.round(h.maxHistoryBytes / 1024),
      workerPeakRssMB: mb(r.peakRssBytes),
      load: loadAverage(),
    });
  }
  console.log('\nScale: one worker, no rate limit');
  console.log('  accounts    cohort   wall s  ms/acct  msg/s  ledger MB  ckpt KB  B/acct  events  ev/1k  CAN  RSS MB');
  for (const x of rows) {
    console.log(
      `  ${[
        fmt(x.accounts as number).padStart(9),
        fmt(x.cohort as number).padStart(9),
        String(x.wallS).padStart(8),
        String(x.msPerAccount).padStart(8),
        String(x.messagesPerS).padStart(6),
        String(x.ledgerGrowthMB).padStart(10),
        String(x.checkpointsGrowthKB).padStart(8),
        String(x.ledgerBytesPerAccount).padStart(7),
        String(x.historyEvents).padStart(7),
        String(x.eventsPer1000Accounts).padStart(6),
        String(x.continuedAsNew).padStart(4),
        String(x.workerPeakRssMB).padStart(7),
      ].join(' ')}`,
    );
  }
  return { mode: 'scale', sizes: rows };
}
