// A real worker process (`workers/main.ts`), as `npm run worker` starts it: the one way the tests,
// the demo, the drills and the benchmarks start workers.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from './index';

/**
 * Worker processes a test starts side by side: three against the production-shaped cluster
 * (`npm run test:cluster`), where several workers share shards and task queues as in production.
 */
export const WORKER_PROCESSES = process.env.PINRESET_TEMPORAL === 'cluster' ? 3 : 1;

/** `n` worker processes, ready. */
export async function spawnWorkers(env: Record<string, string>, n: number): Promise<WorkerProcess[]> {
  const started = Array.from({ length: n }, () => spawnWorker(env));
  await Promise.all(started.map((w) => w.ready));
  return started;
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote, for assertions on logs. */
  output(): string;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * PINRESET_WORKER_JS=dist (set by `npm run test:cluster`): the compiled worker of `npm run build`,
 * as `npm run start:worker` and the Docker image run it, instead of the TypeScript source.
 */
const ENTRY =
  process.env.PINRESET_WORKER_JS === 'dist'
    ? [
        '--import',
        path.join(PROJECT_ROOT, 'scripts', 'esm-extensionless.mjs'),
        path.join(PROJECT_ROOT, 'dist', 'workers', 'main.js'),
      ]
    : ['--import', 'tsx', path.join(PROJECT_ROOT, 'workers', 'main.ts')];

export interface SpawnOptions {
  /** Copy the worker's output to this process's stdout/stderr (the demo, the drills). */
  echo?: boolean;
  /** Node flags before the entry (heap cap, CPU profile). */
  nodeArgs?: string[];
  /** Every chunk the worker writes (the drills' log files). */
  onOutput?: (text: string) => void;
}

export function spawnWorker(env: Record<string, string>, opts: SpawnOptions = {}): WorkerProcess {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...ENTRY], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (opts.echo) {
    child.stdout!.pipe(process.stdout, { end: false });
    child.stderr!.pipe(process.stderr, { end: false });
  }
  let out = '';
  let markReady: () => void;
  let failReady: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  let started = false;
  const onData = (b: Buffer) => {
    const text = b.toString();
    opts.onOutput?.(text);
    // Tests read everything a worker wrote; with echo or onOutput (the demo, the drills: hours of
    // logs) someone else has them, and a tail is enough for the errors.
    out = opts.echo || opts.onOutput ? (out + text).slice(-200_000) : out + text;
    // Looked for until seen (the line may arrive split across chunks), not in every later chunk.
    if (!started && out.includes('"worker started"')) {
      started = true;
      markReady();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      failReady(new Error(`worker exited before it was ready (code ${code}, signal ${signal}):\n${out.slice(-2000)}`));
      resolve({ code, signal });
    }),
  );
  return {
    child,
    output: () => out,
    ready,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
