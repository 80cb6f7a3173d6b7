// A production-shaped Temporal cluster for the local stack (PINRESET_TEMPORAL=cluster): the real
// `temporal-server` v1.32.0 built from Go modules by scripts/setup.ts, PostgreSQL persistence and
// SQL visibility in its own embedded PostgreSQL, 4 history shards, the committed static config
// (deploy/temporal/server.yaml, the file docker-compose.yml mounts), schemas set up with
// `temporal-sql-tool`, the `default` namespace and the project's search attributes registered
// with the Temporal CLI. No Web UI.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { waitFor } from './ports';
import { startPostgres, type LocalPostgres } from './postgres';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { waitForNamespace, withTemporal, type LocalTemporal } from './temporal';

const run = promisify(execFile);
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The server version everywhere: setup's build, this cluster, docker-compose.yml (tests/compose.test.ts). */
export const TEMPORAL_SERVER_VERSION = '1.32.0';
export const SERVER_CONFIG_FILE = path.join(PROJECT_ROOT, 'deploy', 'temporal', 'server.yaml');
export const DYNAMIC_CONFIG_FILE = path.join(PROJECT_ROOT, 'deploy', 'temporal', 'dynamicconfig.yaml');
/** Embedded in temporal-sql-tool (schema/embed.go): no checkout of the server needed. */
export const SQL_SCHEMAS = {
  temporal: 'postgresql/v12/temporal',
  temporal_visibility: 'postgresql/v12/visibility',
} as const;

export interface ClusterBinaries {
  dir: string;
  server: string;
  sqlTool: string;
}

/** Outside the clone, shared by every checkout on the machine: ~/.cache/pinreset/temporal-server-1.32.0/. */
export function clusterBinaries(): ClusterBinaries {
  const cache =
    process.env.PINRESET_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'pinreset');
  const dir = path.join(cache, `temporal-server-${TEMPORAL_SERVER_VERSION}`);
  return { dir, server: path.join(dir, 'temporal-server'), sqlTool: path.join(dir, 'temporal-sql-tool') };
}

export interface ClusterOptions {
  /** PostgreSQL data and the server's log live here. */
  dataDir: string;
  keepData?: boolean;
  /** Test-only dynamic config on top of deploy/temporal/dynamicconfig.yaml. */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** The Temporal CLI, for the namespace and the search attributes (as an operator would). */
  cli: string;
  namespace?: string;
}

export interface LocalCluster extends LocalTemporal {
  postgres: LocalPostgres;
  logFile: string;
}

/**
 * The committed dynamic config with `overrides` replacing (not duplicating: the server's YAML
 * parser rejects duplicate keys) top-level entries of the same name.
 */
export function dynamicConfigWith(base: string, overrides: Record<string, string | number | boolean>): string {
  const out: string[] = [];
  let skipping = false;
  for (const line of base.split('\n')) {
    const key = /^([^\s#][^:]*):\s*$/.exec(line)?.[1];
    if (key !== undefined) skipping = key in overrides;
    else if (line && !/^[\s-]/.test(line)) skipping = false;
    if (!skipping) out.push(line);
  }
  for (const [key, value] of Object.entries(overrides)) out.push(`${key}:`, `  - value: ${JSON.stringify(value)}`);
  return `${out.join('\n').trimEnd()}\n`;
}

export async function startCluster(opts: ClusterOptions): Promise<LocalCluster> {
  const bins = clusterBinaries();
  for (const bin of [bins.server, bins.sqlTool]) {
    if (!existsSync(bin)) {
      throw new Error(
        `PINRESET_TEMPORAL=cluster needs ${bin}: run \`npm run setup\` (builds go.temporal.io/server v${TEMPORAL_SERVER_VERSION} with Go)`,
      );
    }
  }
  const namespace = opts.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
  const dataDir = path.resolve(opts.dataDir);
  if (!opts.keepData) await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });

  const postgres = await startPostgres({
    dataDir: path.join(dataDir, 'postgres'),
    keepData: opts.keepData,
    database: 'postgres',
    ignoreDatabaseUrl: true,
  });
  try {
    const db = new URL(postgres.url);
    const dbEnv = {
      TEMPORAL_DB_HOST: db.hostname,
      TEMPORAL_DB_PORT: db.port,
      TEMPORAL_DB_USER: decodeURIComponent(db.username),
      TEMPORAL_DB_PASSWORD: decodeURIComponent(db.password),
    };
    await setupSchemas(bins.sqlTool, postgres.url, dbEnv);

    let dynamicConfigFile = DYNAMIC_CONFIG_FILE;
    if (opts.dynamicConfig && Object.keys(opts.dynamicConfig).length) {
      dynamicConfigFile = path.join(dataDir, 'dynamicconfig.yaml');
      await writeFile(
        dynamicConfigFile,
        dynamicConfigWith(readFileSync(DYNAMIC_CONFIG_FILE, 'utf8'), opts.dynamicConfig),
      );
    }
    const names = [
      'TEMPORAL_FRONTEND_PORT',
      'TEMPORAL_FRONTEND_HTTP_PORT',
      'TEMPORAL_FRONTEND_MEMBERSHIP_PORT',
      'TEMPORAL_HISTORY_PORT',
      'TEMPORAL_HISTORY_MEMBERSHIP_PORT',
      'TEMPORAL_MATCHING_PORT',
      'TEMPORAL_MATCHING_MEMBERSHIP_PORT',
      'TEMPORAL_WORKER_PORT',
      'TEMPORAL_WORKER_MEMBERSHIP_PORT',
    ] as const;
    const picked = await freePorts(names.length);
    const ports = Object.fromEntries(names.map((n, i) => [n, picked[i]])) as Record<(typeof names)[number], number>;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? os.tmpdir(),
      ...dbEnv,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      TEMPORAL_BIND_IP: '127.0.0.1',
      TEMPORAL_DYNAMIC_CONFIG_FILE: dynamicConfigFile,
      TEMPORAL_LOG_LEVEL: process.env.PINRESET_TEMPORAL_LOG_LEVEL ?? 'warn',
    };
    const address = `127.0.0.1:${ports.TEMPORAL_FRONTEND_PORT}`;
    const logFile = path.join(dataDir, 'temporal-server.log');
    const log = createWriteStream(logFile, { flags: 'a' });
    const server = new ServerProcess(bins.server, env, log);

    await server.launch(address);
    await registerNamespace(opts.cli, address, namespace);

    const stopOnExit = () => server.child?.kill('SIGKILL');
    process.once('exit', stopOnExit);
    let stopped = false;
    return {
      address,
      namespace,
      uiUrl: '',
      started: true,
      postgres,
      logFile,
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', stopOnExit);
        await server.kill('SIGTERM');
        log.end();
        await postgres.stop();
      },
      async restart() {
        // As a crash: no graceful hand-over of shards, then the same process comes back.
        await server.kill('SIGKILL');
        await server.launch(address);
        await waitForNamespace(address, namespace, 90_000);
      },
    };
  } catch (err) {
    await postgres.stop().catch(() => undefined);
    throw err;
  }
}

/**
 * n distinct free ports, all held open while picking so none is handed out twice. Below 32768:
 * the server stores its membership ports in cluster_membership.rpc_port, a PostgreSQL smallint
 * ("value 37401 is out of range for type smallint" and a fatal exit otherwise), and Linux hands
 * out ephemeral ports from 32768 up.
 */
async function freePorts(n: number): Promise<number[]> {
  const held: net.Server[] = [];
  try {
    for (let tries = 0; held.length < n; tries++) {
      if (tries > 1000) throw new Error('no free ports below 32768 on 127.0.0.1');
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      const s = net.createServer();
      const ok = await new Promise<boolean>((resolve) => {
        s.once('error', () => resolve(false));
        s.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (ok) held.push(s);
    }
    return held.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}

class ServerProcess {
  child?: ChildProcess;
  private tail = '';

  constructor(
    private bin: string,
    private env: Record<string, string>,
    private log: WriteStream,
  ) {}

  async launch(address: string): Promise<void> {
    this.tail = '';
    const child = spawn(this.bin, ['--config-file', SERVER_CONFIG_FILE, '--allow-no-auth', 'start'], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (b: Buffer) => {
      this.log.write(b);
      this.tail = (this.tail + b.toString()).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) =>
        reject(new Error(`temporal-server exited (code ${code}, signal ${signal}): ${this.tail}`)),
      ),
    );
    exited.catch(() => undefined);
    await Promise.race([
      exited,
      waitFor(
        'temporal-server frontend',
        () => withTemporal(address, (c) => c.workflowService.getSystemInfo({})),
        90_000,
        250,
      ),
    ]);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
      c.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      c.kill(signal);
    });
  }
}

/** create + setup-schema -v 0.0 + update-schema for both databases, as the server's docs prescribe. */
async function setupSchemas(sqlTool: string, adminUrl: string, db: Record<string, string>): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const exists = new Set(
    (await admin.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map((r) => r.datname),
  );
  await admin.end();
  const base = [
    '--plugin',
    'postgres12',
    '--ep',
    db.TEMPORAL_DB_HOST,
    '-p',
    db.TEMPORAL_DB_PORT,
    '-u',
    db.TEMPORAL_DB_USER,
    '--pw',
    db.TEMPORAL_DB_PASSWORD,
  ];
  await Promise.all(
    Object.entries(SQL_SCHEMAS).map(async ([database, schemaName]) => {
      const tool = async (...args: string[]) => {
        try {
          await run(sqlTool, [...base, '--db', database, ...args], { timeout: 120_000 });
        } catch (err) {
          const e = err as Error & { stderr?: string; stdout?: string };
          throw new Error(`temporal-sql-tool ${args[0]} (${database}) failed: ${e.stderr || e.stdout || e.message}`, {
            cause: err,
          });
        }
      };
      if (!exists.has(database)) {
        await tool('create');
        await tool('setup-schema', '-v', '0.0');
      }
      // Idempotent: applies only the versions not applied yet.
      await tool('update-schema', '--schema-name', schemaName);
    }),
  );
}

/** `default` namespace and every search attribute of workflows/search-attributes.ts, with the CLI. */
async function registerNamespace(cli: string, address: string, namespace: string): Promise<void> {
  const temporal = async (...args: string[]) => run(cli, [...args, '--address', address], { timeout: 30_000 });
  try {
    await temporal('operator', 'namespace', 'create', '--namespace', namespace, '--retention', '72h');
  } catch (err) {
    if (!/already (exists|registered)/i.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
  }
  await waitForNamespace(address, namespace, 90_000);
  const attrs = Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--name', name, '--type', type]);
  // Right after the namespace is created the frontend's namespace cache may not know it yet.
  await waitFor(
    'search attributes',
    async () => {
      try {
        await temporal('operator', 'search-attribute', 'create', '--namespace', namespace, ...attrs);
      } catch (err) {
        if (!/already exists/i.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
      }
    },
    60_000,
    1_000,
  );
  // SQL visibility maps them per namespace, and the frontend learns the mapping on its next
  // namespace cache refresh (seconds): until then a start with them fails with "no mapping
  // defined". A list query naming every one of them is refused until the frontend knows them all.
  const query = Object.entries(SEARCH_ATTRIBUTES)
    .map(([name, type]) => `${name} = ${type === 'Bool' ? 'false' : "'probe'"}`)
    .join(' AND ');
  await waitFor(
    'search attributes known to the frontend',
    () => withTemporal(address, (c) => c.workflowService.countWorkflowExecutions({ namespace, query })),
    90_000,
    500,
  );
}
