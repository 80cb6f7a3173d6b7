// Validates docker-compose.yml without a Docker engine: `docker-compose config` (Debian package
// docker-compose 1.29) checks the schema, interpolation and depends_on targets; the normalized
// output is then checked against what the app needs (config/index.ts, search attributes).
//
// `docker-compose config` prints YAML only (1.29 has no --format json) and no YAML library is a
// project dependency, so the output is converted to JSON by the Python that runs docker-compose
// itself: it always has PyYAML, which docker-compose imports.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/index';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { DYNAMIC_CONFIG_FILE, SERVER_CONFIG_FILE, TEMPORAL_SERVER_VERSION } from '../stack/temporal-cluster';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const INSTALL_HINT = 'install it with: apt-get update && apt-get install -y --no-install-recommends docker-compose';

/** Dummy values for the variables the compose file marks required (${VAR:?...}). */
const DUMMY_ENV = {
  TWILIO_ACCOUNT_SID: `AC${'0123456789abcdef'.repeat(2)}`,
  TWILIO_AUTH_TOKEN: 'dummy-auth-token',
  TWILIO_FROM: '+15005550006',
  SMTP_URL: 'smtps://mailer:secret@smtp.carrier.example:465',
  EMAIL_FROM: 'Carrier Security <security@carrier.example>',
  WORKER_DB_PASSWORD: 'dummy-worker-password',
};
/** The variables compose must refuse to run without (`${VAR:?...}`). */
const REQUIRED = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'SMTP_URL', 'EMAIL_FROM', 'WORKER_DB_PASSWORD'] as const;
const LOCAL_ENV_FILE = path.join(ROOT, 'deploy', 'local.env');

interface Service {
  image?: string;
  profiles?: string[];
  volumes?: (string | { source?: string; target?: string; read_only?: boolean })[];
  build?: unknown;
  container_name?: string;
  ports?: unknown[];
  environment?: Record<string, string | null> | string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  deploy?: { replicas?: number };
  stop_signal?: string;
  stop_grace_period?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
}
interface ComposeConfig {
  services: Record<string, Service>;
}

let composeBin: string | undefined;
let python = 'python3';
let work: string;
let emptyEnvFile: string;

function findOnPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, bin))) return path.join(dir, bin);
  }
  return undefined;
}

function requireCompose(): string {
  if (!composeBin)
    throw new Error(`docker-compose is not installed (needed to validate docker-compose.yml); ${INSTALL_HINT}`);
  return composeBin;
}

/**
 * Runs docker-compose hermetically: only PATH/HOME from this process plus `env`, and an empty
 * --env-file, so neither the developer's shell nor a local .env changes the result.
 */
function compose(args: string[], env: Record<string, string> = DUMMY_ENV, file = COMPOSE_FILE, envFile = emptyEnvFile) {
  const r = spawnSync(requireCompose(), ['--env-file', envFile, '-f', file, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function yamlToJson(yaml: string): unknown {
  const r = spawnSync(python, ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: yaml,
    encoding: 'utf8',
  });
  if (r.error || r.status !== 0) {
    throw new Error(
      `cannot convert docker-compose config output to JSON with ${python} (PyYAML missing?): ${r.error?.message ?? r.stderr}`,
    );
  }
  return JSON.parse(r.stdout);
}

function envOf(service: Service): Record<string, string> {
  const out: Record<string, string> = {};
  const env = service.environment ?? {};
  const entries: [string, string | null][] = Array.isArray(env)
    ? env.map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, null]))
    : Object.entries(env);
  // A null value is "pass through from the host if set": unset here, as in the container.
  for (const [k, v] of entries) if (v !== null && v !== undefined) out[k] = String(v);
  return out;
}

function dependsOn(service: Service): Record<string, string> {
  const d = service.depends_on ?? {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((name) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(d).map(([name, v]) => [name, v?.condition ?? 'service_started']));
}

/** "60s", "1m0s", "1m30s" -> seconds. */
function seconds(duration: string | undefined): number {
  let total = 0;
  for (const [, n, unit] of (duration ?? '').matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) {
    total += Number(n) * ({ h: 3600, m: 60, s: 1, ms: 0.001, us: 0.000001 } as Record<string, number>)[unit];
  }
  return total;
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'pinreset-compose-'));
  emptyEnvFile = path.join(work, 'empty.env');
  writeFileSync(emptyEnvFile, '');
  composeBin = findOnPath('docker-compose');
  if (composeBin) {
    // Python-packaged docker-compose: reuse its interpreter, which can import yaml.
    const first = readFileSync(composeBin, { encoding: 'latin1' }).slice(0, 200).split('\n')[0];
    const m = /^#!\s*(\S*python\S*)/.exec(first);
    if (m && existsSync(m[1])) python = m[1];
  }
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('docker-compose.yml', { timeout: 60_000 }, () => {
  // Loaded by each test (not in beforeAll), so a missing docker-compose fails every test with
  // the install hint instead of marking them skipped.
  let cached: ComposeConfig | undefined;
  const load = (): ComposeConfig => {
    if (!cached) {
      const r = compose(['config']);
      if (r.status !== 0) throw new Error(`docker-compose config failed (${r.status}):\n${r.stderr}`);
      cached = yamlToJson(r.stdout) as ComposeConfig;
    }
    return cached;
  };
  const svc = (name: string): Service => {
    const s = load().services[name];
    if (!s) throw new Error(`service ${name} is missing from docker-compose.yml`);
    return s;
  };

  it('validates with `docker-compose config -q`', () => {
    const r = compose(['config', '-q']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses to run without each provider setting and the worker password, naming it', () => {
    for (const name of REQUIRED) {
      const env: Record<string, string> = { ...DUMMY_ENV };
      delete env[name];
      const r = compose(['config', '-q'], env);
      expect(r.status, `without ${name}`).not.toBe(0);
      expect(r.stderr).toContain(`set ${name}`);
    }
  });

  it('has the whole stack; Mailpit and the local Twilio server only in the `local` profile', () => {
    const services = load().services;
    expect(Object.keys(services).sort()).toEqual(
      [
        'accounts-db',
        'callbacks',
        'mailpit',
        'migrate',
        'temporal',
        'temporal-schema',
        'temporal-setup',
        'temporal-db',
        'temporal-ui',
        'twilio-local',
        'worker',
      ].sort(),
    );
    for (const [name, service] of Object.entries(services)) {
      expect(service.profiles ?? [], name).toEqual(['mailpit', 'twilio-local'].includes(name) ? ['local'] : []);
    }
    // No service outside the local profile refers to them: production cannot land in the sinks.
    const source = readFileSync(COMPOSE_FILE, 'utf8')
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n');
    expect(source).not.toMatch(/mailpit:1025|twilio-local:8089/);
    for (const [name, service] of Object.entries(services)) {
      if (service.profiles?.includes('local')) continue;
      expect(JSON.stringify(service.environment ?? {}), name).not.toMatch(/mailpit|twilio-local/);
      expect(Object.keys(dependsOn(service)), name).not.toEqual(expect.arrayContaining(['mailpit']));
    }
  });

  it('with deploy/local.env, runs the whole system on Mailpit and the local Twilio server', () => {
    const r = compose(['config'], {}, COMPOSE_FILE, LOCAL_ENV_FILE);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const local = yamlToJson(r.stdout) as ComposeConfig;
    const env = envOf(local.services.worker);
    expect(env.SMTP_URL).toBe('smtp://mailpit:1025');
    expect(env.TWILIO_API_URL).toBe(`http://twilio-local:${envOf(local.services['twilio-local']).LOCAL_TWILIO_PORT}`);
    expect(() => loadConfig(env)).not.toThrow();
    expect(readFileSync(LOCAL_ENV_FILE, 'utf8')).toMatch(/^COMPOSE_PROFILES=local$/m);
  });

  it('lets the worker scale: no container_name, no published ports, replicas, graceful stop', () => {
    const worker = svc('worker');
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports ?? []).toEqual([]);
    expect(worker.deploy?.replicas).toBe(2);
    expect(worker.stop_signal).toBe('SIGTERM');
    expect(seconds(worker.stop_grace_period)).toBe(60);
    // Compiled JavaScript, as `npm run start:worker` / `start:migrate` run it.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(worker.command).toEqual(pkg.scripts['start:worker'].split(' '));
    expect(svc('migrate').command).toEqual(pkg.scripts['start:migrate'].split(' '));
    expect(worker.command).toContain('dist/workers/main.js');
  });

  it('depends only on services that exist, waiting for health only where a healthcheck exists', () => {
    const config = load();
    const names = new Set(Object.keys(config.services));
    for (const [name, service] of Object.entries(config.services)) {
      for (const [dep, condition] of Object.entries(dependsOn(service))) {
        expect(names.has(dep), `${name} depends on unknown service ${dep}`).toBe(true);
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy') {
          const hc = config.services[dep]?.healthcheck;
          expect(
            hc && !hc.disable && hc.test,
            `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`,
          ).toBeTruthy();
        }
      }
    }
  });

  it('starts the worker only after migrations and the Temporal schema, namespace and search attributes', () => {
    expect(dependsOn(svc('worker'))).toMatchObject({
      migrate: 'service_completed_successfully',
      'temporal-setup': 'service_completed_successfully',
    });
    expect(dependsOn(svc('migrate'))).toMatchObject({ 'accounts-db': 'service_healthy' });
    expect(dependsOn(svc('temporal-schema'))).toMatchObject({ 'temporal-db': 'service_healthy' });
    expect(dependsOn(svc('temporal'))).toMatchObject({ 'temporal-schema': 'service_completed_successfully' });
    expect(dependsOn(svc('temporal-setup'))).toMatchObject({ temporal: 'service_started' });
    expect(String(svc('temporal-setup').command)).toContain('temporal operator cluster health');
  });

  it('runs the server version and the config files that `npm run test:cluster` runs', () => {
    // The cluster test's server: stack/temporal-cluster.ts (built by scripts/setup.ts).
    const temporal = svc('temporal');
    const version = /^temporalio\/server:(\d+\.\d+\.\d+)$/.exec(temporal.image ?? '')?.[1];
    expect(version, `temporal image ${temporal.image}`).toBe(TEMPORAL_SERVER_VERSION);
    for (const tool of ['temporal-schema', 'temporal-setup'])
      expect(svc(tool).image).toBe(`temporalio/admin-tools:${TEMPORAL_SERVER_VERSION}`);
    // The committed config directory, mounted read-only, and the very files the cluster test uses.
    const mount = (temporal.volumes ?? [])
      .map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v))
      .find((v) => v.source && path.resolve(ROOT, v.source) === path.dirname(SERVER_CONFIG_FILE));
    expect(mount, 'deploy/temporal mounted into the temporal service').toBeTruthy();
    const command = ([] as string[]).concat(temporal.command ?? []).join(' ');
    expect(command).toContain(`--config-file ${path.posix.join(mount!.target!, path.basename(SERVER_CONFIG_FILE))}`);
    const env = envOf(temporal);
    expect(env.TEMPORAL_DYNAMIC_CONFIG_FILE).toBe(path.posix.join(mount!.target!, path.basename(DYNAMIC_CONFIG_FILE)));
    expect(path.dirname(DYNAMIC_CONFIG_FILE)).toBe(path.dirname(SERVER_CONFIG_FILE));
    // What the config template reads, and nothing the config pins (shards, stores) from the environment.
    const config = readFileSync(SERVER_CONFIG_FILE, 'utf8');
    expect(config).toMatch(/^# enable-template/);
    expect(config).toMatch(/^ {2}numHistoryShards: 4$/m);
    expect(config.match(/pluginName: postgres12/g)).toHaveLength(2);
    const read = new Set([...config.matchAll(/env "([A-Z_]+)"/g)].map((m) => m[1]));
    for (const name of Object.keys(env))
      if (name.startsWith('TEMPORAL_')) expect(read.has(name), `${name} is read by server.yaml`).toBe(true);
    expect(env.TEMPORAL_BIND_IP).toBe('0.0.0.0');
  });

  it('persists Temporal to its own PostgreSQL, not the accounts database', () => {
    const env = envOf(svc('temporal'));
    expect(env.TEMPORAL_DB_HOST).toBe('temporal-db');
    const db = svc('temporal-db');
    expect(db.image).toMatch(/^postgres:/);
    expect(envOf(db).POSTGRES_USER).toBe(env.TEMPORAL_DB_USER);
    expect(envOf(db).POSTGRES_PASSWORD).toBe(env.TEMPORAL_DB_PASSWORD);
    expect(envOf(svc('temporal-schema'))).toMatchObject({
      TEMPORAL_DB_HOST: 'temporal-db',
      TEMPORAL_DB_USER: env.TEMPORAL_DB_USER,
    });
    const schema = String(svc('temporal-schema').command);
    for (const s of [
      'postgresql/v12/temporal',
      'postgresql/v12/visibility',
      'setup-schema -v 0.0',
      'update-schema --schema-name',
      '--plugin postgres12',
    ]) {
      expect(schema).toContain(s);
    }
    expect(String(db.healthcheck?.test)).toContain('pg_isready');
    expect(svc('accounts-db').image).toMatch(/^postgres:16/);
    expect(String(svc('accounts-db').healthcheck?.test)).toContain('pg_isready');
    expect(svc('temporal-ui').image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
  });

  it('gives the worker every variable config/index.ts requires, and they pass its validation', () => {
    const env = envOf(svc('worker'));
    for (const name of [
      'DATABASE_URL',
      'TEMPORAL_ADDRESS',
      'SMTP_URL',
      'EMAIL_FROM',
      'TWILIO_ACCOUNT_SID',
      'TWILIO_AUTH_TOKEN',
    ]) {
      expect(env[name], `worker env ${name}`).toBeTruthy();
    }
    expect(
      env.TWILIO_FROM || env.TWILIO_MESSAGING_SERVICE_SID,
      'TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID',
    ).toBeTruthy();
    expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
    // Providers exactly as the environment gave them.
    expect(env.SMTP_URL).toBe(DUMMY_ENV.SMTP_URL);
    expect(env.EMAIL_FROM).toBe(DUMMY_ENV.EMAIL_FROM);
    expect(env.TWILIO_FROM).toBe(DUMMY_ENV.TWILIO_FROM);
    expect(env.TEMPORAL_NAMESPACE).toBe(envOf(svc('temporal-setup')).TEMPORAL_NAMESPACE);

    const cfg = loadConfig(env); // throws ConfigError listing every problem
    expect(cfg.worker.metricsPort).toBeGreaterThan(0);

    // The worker logs in as the least-privilege login that `migrate` creates; migrate is the owner.
    const url = new URL(env.DATABASE_URL);
    const db = envOf(svc('accounts-db'));
    const migrate = envOf(svc('migrate'));
    expect(url.hostname).toBe('accounts-db');
    expect(decodeURIComponent(url.username)).toBe(migrate.WORKER_DB_USER);
    expect(decodeURIComponent(url.username)).not.toBe(db.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(DUMMY_ENV.WORKER_DB_PASSWORD);
    expect(migrate.WORKER_DB_PASSWORD).toBe(DUMMY_ENV.WORKER_DB_PASSWORD);
    expect(url.pathname).toBe(`/${db.POSTGRES_DB}`);
    const owner = new URL(migrate.DATABASE_URL);
    expect(decodeURIComponent(owner.username)).toBe(db.POSTGRES_USER);
    expect(decodeURIComponent(owner.password)).toBe(db.POSTGRES_PASSWORD);
    expect(owner.pathname).toBe(url.pathname);

    // Least privilege: the PIN pepper is for the account import only.
    expect(Object.keys(svc('worker').environment ?? {})).not.toContain('PIN_PEPPER');

    expect(() => loadConfig(envOf(svc('migrate')), ['database'])).not.toThrow();
  });

  it('registers exactly the search attributes of workflows/search-attributes.ts', () => {
    const job = svc('temporal-setup');
    const pairs = (envOf(job).SEARCH_ATTRIBUTES ?? '')
      .trim()
      .split(/\s+/)
      .map((p) => p.split('='));
    expect(Object.fromEntries(pairs)).toEqual({ ...SEARCH_ATTRIBUTES });
    expect(String(job.command)).toContain('temporal operator search-attribute create');
    expect(String(job.command)).toContain('already exists');
  });
});

describe('a broken docker-compose.yml', { timeout: 60_000 }, () => {
  it('fails `docker-compose config -q` when depends_on names an unknown service', () => {
    requireCompose();
    const source = readFileSync(COMPOSE_FILE, 'utf8');
    const broken = source.replace(
      /(\n {2}worker:\n[\s\S]*?\n {4}depends_on:\n)/,
      '$1      no-such-service:\n        condition: service_started\n',
    );
    expect(broken, 'could not find the worker depends_on block to break').not.toBe(source);
    // The unmodified copy in the same place validates, so the failure below is the broken depends_on.
    const good = path.join(work, 'good.yml');
    const bad = path.join(work, 'broken.yml');
    writeFileSync(good, source);
    writeFileSync(bad, broken);
    expect(compose(['config', '-q'], DUMMY_ENV, good).status).toBe(0);
    const r = compose(['config', '-q'], DUMMY_ENV, bad);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('no-such-service');
  });
});

describe('.env.example', { timeout: 60_000 }, () => {
  it('documents every variable config/index.ts reads, and the local-stack ones', () => {
    const source = readFileSync(path.join(ROOT, 'config/index.ts'), 'utf8');
    const read = new Set(
      [...source.matchAll(/\br\.(?:optional|required|url|int)\(\s*'([A-Z0-9_]+)'/g)].map((m) => m[1]),
    );
    expect(read.size).toBeGreaterThan(20);
    const example = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    for (const name of [...read, 'TEMPORAL_CLI_PATH', 'PIN_PEPPER', 'PIN_PEPPER_ID', 'PINRESET_MIGRATE_ON_START']) {
      expect(documented.has(name), `${name} is not in .env.example`).toBe(true);
    }
  });

  it('holds no credentials', () => {
    const example = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    expect(example).toMatch(/^TWILIO_AUTH_TOKEN=$/m);
    expect(example).toMatch(/^PIN_PEPPER=$/m);
    expect(example).not.toMatch(/^TWILIO_ACCOUNT_SID=AC[0-9a-fA-F]{32}/m);
  });

  it('as a compose .env file, still makes compose demand the credentials', () => {
    const r = spawnSync(
      requireCompose(),
      ['--env-file', path.join(ROOT, '.env.example'), '-f', COMPOSE_FILE, 'config', '-q'],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir() },
        encoding: 'utf8',
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/set (TWILIO_ACCOUNT_SID|TWILIO_AUTH_TOKEN|WORKER_DB_PASSWORD)/);
  });
});

describe('Dockerfile', () => {
  it('prebuilds the workflow bundle into the image and points WORKFLOW_BUNDLE_PATH at it', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const out = /build-bundle\.ts\s+(\S+)/.exec(pkg.scripts['build:bundle'] ?? '')?.[1];
    expect(out, 'package.json build:bundle names its output file').toBeTruthy();
    expect(dockerfile).toMatch(/^RUN npm run build\b/m);
    expect(pkg.scripts.build).toContain('npm run build:bundle');
    const workdir = /^WORKDIR (\S+)/m.exec(dockerfile)?.[1];
    const env = /^ENV WORKFLOW_BUNDLE_PATH=(\S+)/m.exec(dockerfile)?.[1];
    expect(env).toBe(path.posix.join(workdir ?? '/', out!));
    // Built after the source is copied, before the switch to the unprivileged user.
    const at = (re: RegExp) => dockerfile.search(re);
    expect(at(/^COPY \. \./m)).toBeLessThan(at(/^RUN npm run build\b/m));
    expect(at(/^RUN npm run build\b/m)).toBeLessThan(at(/^USER /m));
    // The host's dist/ never reaches the build context.
    expect(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')).toMatch(/^dist$/m);
  });
});
