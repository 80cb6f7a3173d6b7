// `.env` for the CLI, the worker and the scripts: variables from the file fill in what the
// environment does not set (the environment wins). The file is `.env` in the working directory,
// or PINRESET_ENV_FILE (the demo's held stack writes one); PINRESET_ENV_FILE= (empty) turns it off.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { ConfigError } from './index';

type Env = Record<string, string | undefined>;

/** Loads the env file into `env`; returns the file loaded, if any. Throws ConfigError when PINRESET_ENV_FILE names a missing file. */
export function loadDotEnv(env: Env = process.env, cwd = process.cwd()): string | undefined {
  const named = env.PINRESET_ENV_FILE;
  if (named !== undefined && named.trim() === '') return undefined;
  const file = path.resolve(cwd, named ?? '.env');
  if (!existsSync(file)) {
    if (named !== undefined) throw new ConfigError([`PINRESET_ENV_FILE points to ${named}, which does not exist`]);
    return undefined;
  }
  let values: NodeJS.Dict<string>;
  try {
    values = parseEnv(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`cannot read ${file}: ${(err as Error).message}`]);
  }
  for (const [k, v] of Object.entries(values)) if (env[k] === undefined && v !== undefined) env[k] = v;
  return file;
}

/** Single-quotes a value for a POSIX shell. */
function shellQuote(v: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME=value` lines, ready to paste into a shell. */
export function exportBlock(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
}

/** The same variables as an env file (double quotes, as .env.example), loadable with PINRESET_ENV_FILE. */
export function envFileText(vars: Record<string, string>): string {
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}=${/^[A-Za-z0-9_@%+=:,./-]*$/.test(v) ? v : JSON.stringify(v)}`)
    .join('\n')}\n`;
}
