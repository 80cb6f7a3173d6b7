// The benchmark's options (`npm run bench -- --help`), parsed once.
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { PROJECT_ROOT } from '../stack';
import { DEFAULT_PARAMS } from '../domain/run';
import { parse } from '../cli/options';

// The shared parsers (cli/options.ts), with the bench's conveniences: 850_000 and 100k.
const count = (v: string): number => parse.count(1)(v.replace(/_/g, ''));
const positiveNumber = parse.amount(0.001);
function sizeList(v: string): number[] {
  const sizes = v.split(',').map((x) => count(x.trim().replace(/k$/i, '000')));
  if (sizes.length === 0) throw new InvalidArgumentError('give at least one size');
  return sizes;
}

export interface Opts {
  accounts?: number;
  batchSize: number;
  concurrency: number;
  resetConcurrency?: number;
  exposure?: boolean;
  rate?: number;
  newRate?: number;
  changeAt?: number;
  workers: number;
  seconds: number;
  warmup: number;
  scale?: number[];
  only?: 'baseline' | 'pipeline';
  receipts: boolean;
  baselineCallbacks: boolean;
  repeat: number;
  cpuProf?: boolean;
  pgStats?: boolean;
  nodeArgs?: string;
  heapMb: number;
  dataDir: string;
}

export const program = new Command('bench')
  .description('Benchmarks of the pipeline on the embedded local stack (see BENCHMARKS.md)')
  .option('--accounts <n>', 'accounts to seed (default 850000; rate mode: enough for --seconds)', count)
  .option(
    '--batch-size <n>',
    `accounts per batch (default: the run default, ${DEFAULT_PARAMS.batchSize})`,
    count,
    DEFAULT_PARAMS.batchSize,
  )
  .option('--concurrency <n>', 'notify batches in flight', count, 8)
  .option(
    '--reset-concurrency <n>',
    `reset batches in flight (default: the run default, ${DEFAULT_PARAMS.resetConcurrency})`,
    count,
  )
  .option('--exposure', 'exposure window: notifications at --rate (default 100 msg/s), stop once every PIN is reset')
  .option('--rate <n>', 'rate accuracy mode: configured rate, msg/s for all workers together', positiveNumber)
  .option(
    '--new-rate <n>',
    'rate mode: rate set mid-run through the setRate update (default 1.5 x --rate)',
    positiveNumber,
  )
  .option(
    '--change-at <s>',
    'rate mode: seconds after the first message to change the rate (default --seconds / 2)',
    positiveNumber,
  )
  .option('--workers <n>', 'worker processes', count, 1)
  .option('--seconds <n>', 'rate mode: seconds to measure after the first message', positiveNumber, 60)
  .option('--warmup <s>', 'rate mode: seconds ignored after the first message and after the change', positiveNumber, 5)
  .option('--scale <sizes>', 'scale mode: comma-separated sizes, e.g. 100000,400000,850000', sizeList)
  .option('--only <which>', 'default mode: run only "baseline" or "pipeline"')
  .option(
    '--no-receipts',
    'workers send without a status-callback URL: no callbacks, no receipts, no delivery follow-up (what the receipts cost)',
  )
  .option(
    '--no-baseline-callbacks',
    "with receipts on, the baseline's SMS carry no callback URL (default: one to a sink that answers 204 and records nothing, so the local Twilio's callback work, Twilio's in production, is the same for both contenders)",
  )
  .option('--repeat <n>', 'default mode: alternate the contenders n times and report the median of each', count, 1)
  .option(
    '--cpu-prof',
    'write V8 CPU profiles of the worker, baseline and callback-receiver processes to <data-dir>/profiles/<process>',
  )
  .option(
    '--pg-stats',
    'load pg_stat_statements (restarts the bench PostgreSQL) and print the top statements of each contender',
  )
  .option(
    '--heap-mb <n>',
    'V8 old-space cap of the worker and baseline processes (--max-old-space-size); 0 = Node default (sized from the host RAM)',
    (v) => (v === '0' ? 0 : count(v)),
    160,
  )
  .option(
    '--node-args <args>',
    'extra node options for the worker and baseline processes, e.g. "--max-semi-space-size=8"',
  )
  .option(
    '--data-dir <dir>',
    'where the bench stack keeps its data (wiped at start)',
    path.join(PROJECT_ROOT, '.data', 'bench'),
  )
  .parse();

export const opts = program.opts<Opts>();
