// Default mode: the naive baseline and the pipeline on the same data; the ratio of their wall times.
import { DEFAULT_PARAMS } from '../domain/run';
import {
  fmt,
  pgStatsReset,
  pgStatsTop,
  printPgStats,
  freshData,
  loadAverage,
  mb,
  relationSizes,
  s1,
  BENCH_SEED,
} from './support';
import { opts } from './options';
import { log, type Bench } from './harness';
import { describe, hotShare, ledgerUpdates, runBaseline, runPipelineToEnd, type ContenderResult } from './contenders';

export async function compareMode(b: Bench): Promise<Record<string, unknown>> {
  const accounts = opts.accounts ?? 850_000;
  const runs: ContenderResult[] = [];
  const pgStatements: Record<string, Awaited<ReturnType<typeof pgStatsTop>>> = {};
  // Contenders alternate (baseline, pipeline, baseline, ...) so a change in the machine's load
  // hits both; with --repeat the median run of each is reported.
  for (let round = 1; round <= opts.repeat; round++) {
    for (const name of ['baseline', 'pipeline'] as const) {
      if (opts.only && opts.only !== name) continue;
      const { seedMs } = await freshData(b.db, accounts);
      log(
        `Round ${round}/${opts.repeat}: seeded ${fmt(accounts)} accounts (seed ${BENCH_SEED}) in ${s1(seedMs)} s; running the ${name}... (load ${loadAverage()})`,
      );
      if (opts.pgStats) await pgStatsReset(b.db);
      const before = await relationSizes(b.db);
      const upd0 = await ledgerUpdates(b.db);
      const r = name === 'baseline' ? await runBaseline(b) : await runPipelineToEnd(b);
      log(`  ledger updates: ${JSON.stringify(hotShare(upd0, await ledgerUpdates(b.db)))}`);
      const after = await relationSizes(b.db);
      r.dbGrowthBytes = {
        ledger: after.ledger - before.ledger,
        checkpoints: after.checkpoints - before.checkpoints,
        accounts: after.accounts - before.accounts,
      };
      log(
        `  ${name}: ${s1(r.wallMs)} s, ${fmt(Math.round((r.sentSms + r.sentEmail) / (r.wallMs / 1000)))} msg/s, load ${loadAverage()}`,
      );
      runs.push(r);
      if (opts.pgStats) pgStatements[name] = await pgStatsTop(b.db);
    }
  }
  const median = (name: string): ContenderResult | undefined => {
    const mine = runs.filter((r) => r.name === name).sort((x, y) => x.wallMs - y.wallMs);
    return mine[Math.floor((mine.length - 1) / 2)];
  };
  const results = [median('baseline'), median('pipeline')].filter((r): r is ContenderResult => r !== undefined);
  if (opts.repeat > 1) {
    console.log(`
All runs (alternating; the median of each contender is reported below):`);
    for (const r of runs) {
      console.log(
        `  ${r.name.padEnd(9)} wall ${String(s1(r.wallMs)).padStart(7)} s  ${String(Math.round((r.sentSms + r.sentEmail) / (r.wallMs / 1000))).padStart(6)} msg/s  process CPU ${String(r.processCpuS?.toFixed(1)).padStart(6)} s  peak RSS ${mb(r.peakRssBytes)} MB`,
      );
    }
  }
  const out: Record<string, unknown> = {
    mode: 'compare',
    accounts,
    batchSize: opts.batchSize,
    concurrency: opts.concurrency,
    repeat: opts.repeat,
  };
  if (opts.repeat > 1)
    out.runs = runs.map((r) => ({
      name: r.name,
      wallS: s1(r.wallMs),
      cpuS: r.processCpuS,
      peakRssMB: mb(r.peakRssBytes),
    }));
  for (const r of results) out[r.name] = describe(r);
  const base = results.find((r) => r.name === 'baseline');
  const pipe = results.find((r) => r.name === 'pipeline');

  console.log(
    `\nBenchmark: ${fmt(accounts)} accounts seeded, no rate limit, ${opts.workers} worker, batch ${opts.batchSize}, ${opts.concurrency} notify batches in flight, ${opts.resetConcurrency ?? DEFAULT_PARAMS.resetConcurrency} reset batches in flight, receipts ${opts.receipts ? `on${opts.baselineCallbacks ? " (the baseline's callbacks to a sink)" : ''}` : 'off'}, heap cap ${opts.heapMb ? `${opts.heapMb} MB` : 'Node default'}`,
  );
  const row = (label: string, f: (d: Record<string, unknown>) => unknown) =>
    console.log(
      `  ${label.padEnd(28)}${results.map((r) => String(f(out[r.name] as Record<string, unknown>)).padStart(16)).join('')}`,
    );
  console.log(`  ${''.padEnd(28)}${results.map((r) => r.name.padStart(16)).join('')}`);
  row('cohort (active accounts)', (d) => fmt(d.cohort as number));
  row('wall time, s', (d) => d.wallS);
  row('accounts/s', (d) => fmt(d.accountsPerS as number));
  row('messages/s', (d) => fmt(d.messagesPerS as number));
  row('messages (sms + email)', (d) => fmt(d.messages as number));
  row('status callbacks posted', (d) => fmt(d.statusCallbacks as number));
  row('exposure window, s', (d) => d.exposureWindowS);
  row('peak RSS, MB', (d) => d.peakRssMB);
  row('  RSS once started, MB', (d) => d.rssAtStartMB ?? '-');
  row('CPU s: contender process', (d) => (d.cpuS as Record<string, unknown>).contender);
  row('  of which JS main thread', (d) => (d.cpuS as Record<string, unknown>).contenderMainThread);
  row('CPU s: PostgreSQL', (d) => (d.cpuS as Record<string, unknown>).postgres);
  row('CPU s: Temporal server', (d) => (d.cpuS as Record<string, unknown>).temporal);
  row('CPU s: bench + fake providers', (d) => (d.cpuS as Record<string, unknown>).benchAndProviders);
  row('CPU s: callback receiver', (d) => (d.cpuS as Record<string, unknown>).callbackReceiver);
  row('Temporal actions', (d) => d.temporalActions ?? '-');
  row('  per account', (d) => d.actionsPerAccount ?? '-');
  row('ledger growth, MB', (d) => (d.dbGrowthMB as Record<string, unknown> | undefined)?.ledger ?? '-');
  row('history events (runs)', (d) =>
    d.historyEvents !== undefined ? `${d.historyEvents} (${(d.continuedAsNew as number) + 1})` : '-',
  );
  console.log(
    '  Temporal actions = WorkflowTaskCompleted + ActivityTaskScheduled events over the continue-as-new chain.',
  );

  for (const [name, stats] of Object.entries(pgStatements)) printPgStats(name, stats);

  if (base && pipe) {
    const ratio = pipe.wallMs / base.wallMs;
    const actionsPerAccount = pipe.history!.actions / Math.max(1, pipe.cohort);
    const targets = {
      ratio: { value: +ratio.toFixed(3), target: 1.25, met: ratio <= 1.25 },
      wallS: { value: s1(pipe.wallMs), target: 360, met: pipe.wallMs <= 360_000 },
      workerPeakRssMB: {
        value: mb(pipe.peakRssBytes),
        target: 300,
        met: (pipe.peakRssBytes ?? Infinity) <= 300 * 1024 * 1024,
      },
      actionsPerAccount: { value: +actionsPerAccount.toFixed(5), target: 0.01, met: actionsPerAccount <= 0.01 },
    };
    out.ratio = targets.ratio.value;
    out.targets = targets;
    const cpuRatio = (pipe.processCpuS ?? 0) / Math.max(0.001, base.processCpuS ?? 0);
    out.cpuRatio = +cpuRatio.toFixed(3);
    console.log(
      `\n  ratio pipeline/baseline (wall time): ${ratio.toFixed(3)}   (contender process CPU: ${cpuRatio.toFixed(3)})`,
    );
    console.log(`  targets (set for 850,000 accounts on 2 cores; this run: ${fmt(accounts)}):`);
    for (const [k, t] of Object.entries(targets))
      console.log(
        `    ${k.padEnd(20)} ${String(t.value).padStart(10)}  target ${t.target}  ${t.met ? 'met' : 'NOT met'}`,
      );
  }
  return out;
}
