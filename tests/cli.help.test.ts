// The CLI's help says what is true (no doubled defaults, no --wait where there is none, redrive
// defaults as they are), and the CLI loads `.env` / PINRESET_ENV_FILE with the environment
// winning: real subprocesses against the test's own PostgreSQL database.
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envFileText, exportBlock, loadDotEnv } from '../config/dotenv';
import type { Db } from '../db/pool';
import { PROJECT_ROOT } from '../stack';
import { freshDatabase } from './support/harness';

function cli(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const e = Object.fromEntries(
      Object.entries({ PATH: process.env.PATH, HOME: process.env.HOME, ...env }).filter(([, v]) => v !== undefined),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
      cwd: PROJECT_ROOT,
      env: e as NodeJS.ProcessEnv,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const COMMANDS = [
  'plan',
  'start',
  'status',
  'pause',
  'resume',
  'cancel',
  'approve',
  'set-rate',
  'list',
  'report',
  'redrive',
];

describe('pinreset help text', () => {
  it('has no doubled defaults, mentions --wait only where it exists, and gives redrive defaults as they are', async () => {
    const helps = await Promise.all(COMMANDS.map((c) => cli([c, '--help'], { PINRESET_ENV_FILE: '' })));
    helps.forEach((h, i) => {
      const cmd = COMMANDS[i];
      expect(h.code, cmd).toBe(0);
      // One option's text, wrapped lines joined.
      const options = h.stdout.split(/\n(?= {2}-)/).map((o) => o.replace(/\s+/g, ' '));
      for (const o of options) expect((o.match(/\(default/g) ?? []).length, `${cmd}: ${o}`).toBeLessThanOrEqual(1);
      const hasWait = /^ {2}--wait\b/m.test(h.stdout);
      expect(hasWait, cmd).toBe(cmd === 'start' || cmd === 'redrive');
      if (!hasWait) expect(h.stdout, cmd).not.toContain('--wait');
      expect(h.stdout, cmd).toContain('Exit codes:');
    });
    const redrive = helps[COMMANDS.indexOf('redrive')].stdout.replace(/\s+/g, ' ');
    for (const opt of [
      '--policy',
      '--batch-size',
      '--rate',
      '--concurrency',
      '--auto-pause-rate',
      '--auto-pause-window',
      '--db-stall-pause',
      '--receipt-deadline',
      '--retry-after',
      '--filtered-pause-rate',
    ]) {
      expect(redrive).toMatch(new RegExp(`${opt} <[^>]+> (?:(?! --).)*\\(default: the source run's\\)`));
    }
    expect(redrive).toContain("--reason <text> incident or ticket id (default: the source run's");
    expect(redrive).not.toMatch(/\(default 100\)|\(default 2000\)/);
    const status = helps[COMMANDS.indexOf('status')].stdout.replace(/\s+/g, ' ');
    expect(status).toContain('--interval <seconds> redraw interval with --watch, 0.5-3600 (default: 2)');
    expect(status).toContain('cannot make progress');
    const approve = helps[COMMANDS.indexOf('approve')].stdout.replace(/\s+/g, ' ');
    expect(approve).toContain('Refused until then');
    const start = helps[COMMANDS.indexOf('start')].stdout.replace(/\s+/g, ' ');
    expect(start).toContain(
      '--canary <n> canary: every PIN is invalidated at once, but only the first N accounts are notified until `approve`',
    );
  });
});

describe('.env', () => {
  let db: Db;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    ({ db, url } = await freshDatabase('dotenv'));
    dir = await mkdtemp(path.join(os.tmpdir(), 'pinreset-env-'));
  });
  afterAll(async () => {
    await db?.end();
  });

  it('the CLI reads the file PINRESET_ENV_FILE names; the environment wins over it', async () => {
    const file = path.join(dir, 'stack.env');
    await writeFile(
      file,
      envFileText({ DATABASE_URL: url, EMAIL_FROM: 'Carrier Security <security@carrier.example>' }),
    );
    const fromFile = await cli(['list'], { PINRESET_ENV_FILE: file });
    expect(fromFile).toMatchObject({ code: 0, stdout: 'No runs yet.\n', stderr: '' });
    const envWins = await cli(['list'], {
      PINRESET_ENV_FILE: file,
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    });
    expect(envWins.code).toBe(1);
    expect(envWins.stderr).toMatch(/^error: cannot reach PostgreSQL \(DATABASE_URL\)/);
    const missing = await cli(['list'], { PINRESET_ENV_FILE: path.join(dir, 'nope.env') });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      `error: invalid configuration: PINRESET_ENV_FILE points to ${path.join(dir, 'nope.env')}, which does not exist\n`,
    );
  });

  it('loads .env from the working directory, fills only what is unset, and the export block survives a shell', async () => {
    await writeFile(
      path.join(dir, '.env'),
      'DATABASE_URL=postgres://from-file/db\nTEMPORAL_ADDRESS=127.0.0.1:7233\nEMAIL_FROM="Carrier Security <security@carrier.example>"\n',
    );
    const env: Record<string, string | undefined> = { TEMPORAL_ADDRESS: '10.0.0.1:7233' };
    expect(loadDotEnv(env, dir)).toBe(path.join(dir, '.env'));
    expect(env).toEqual({
      TEMPORAL_ADDRESS: '10.0.0.1:7233',
      DATABASE_URL: 'postgres://from-file/db',
      EMAIL_FROM: 'Carrier Security <security@carrier.example>',
    });
    expect(loadDotEnv({ PINRESET_ENV_FILE: '' }, dir)).toBeUndefined();

    const vars = { EMAIL_FROM: "Carrier's Security <security@carrier.example>", DATABASE_URL: url };
    const shell = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', `${exportBlock(vars)}\nprintf '%s\\n' "$EMAIL_FROM" "$DATABASE_URL"`]);
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', () => resolve(out));
    });
    expect(shell).toBe(`${vars.EMAIL_FROM}\n${vars.DATABASE_URL}\n`);
  });
});
