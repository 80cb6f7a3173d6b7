// `npm run bench`: benchmarks on the embedded local stack (Temporal dev server, PostgreSQL, local
// Twilio and SMTP in this process). Four modes:
//
//   default      the naive baseline (bench/naive-baseline.ts, no Temporal) and the pipeline
//                with one worker process, on the same seeded data, same local providers, no rate
//                limit: wall time, accounts/s, messages/s, peak RSS, Temporal actions per account,
//                and the ratio pipeline/baseline.
//   --exposure   the pipeline throttled to 100 msg/s: time from start to the last PIN of the cohort
//                invalidated; the run is stopped once the resets are done.
//   --rate <n>   rate accuracy: --workers worker processes, --seconds long, the rate changed
//                mid-run through the setRate update; achieved rate per 10-second window.
//   --scale <l>  the pipeline at several sizes: wall time, database growth, history events.
//
// Every mode ends with one line of JSON. Sizes: develop at 10k-50k accounts; 850,000 is the target.
import os from 'node:os';
import { loadAverage } from './support';
import { opts } from './options';
import { setUp, tearDown } from './harness';
import { compareMode } from './compare';
import { exposureMode } from './exposure';
import { rateMode } from './rate';
import { scaleMode } from './scale';

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const b = await setUp();
  let out: Record<string, unknown>;
  try {
    if (opts.scale) out = await scaleMode(b);
    else if (opts.exposure) out = await exposureMode(b);
    else if (opts.rate !== undefined) out = await rateMode(b);
    else out = await compareMode(b);
  } finally {
    await tearDown(b).catch(() => undefined);
  }
  const machine = {
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadBefore,
    loadAfter: loadAverage(),
  };
  if (opts.cpuProf) console.log(`\nCPU profiles: ${b.profileDir}`);
  console.log(
    `Machine: ${machine.cpus} cores, ${machine.memGiB} GiB, load average before ${loadBefore}, after ${machine.loadAfter}`,
  );
  console.log(JSON.stringify({ ...out, heapMb: opts.heapMb, machine }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
