// `pinreset senders` (cli/main.ts, cli/sender-budgets.ts) as operators run it: a real
// subprocess against the test's own PostgreSQL database. Lists the shared send budgets with their
// use, changes one live, and refuses 0, too-small rates and unknown senders with a clear error.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/pool';
import { PROJECT_ROOT } from '../stack';
import { acquireSendBudget, listSenderBudgets } from '../db/sql/send-budget';
import { freshDatabase } from './support/harness';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const SENDER = 'sms:+15550000000';

describe('pinreset senders', () => {
  let db: Db;
  let dbUrl: string;

  function cli(args: string[]): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const env = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: dbUrl,
        PINRESET_ENV_FILE: '',
      } as NodeJS.ProcessEnv;
      const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: PROJECT_ROOT, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  const rateOf = async (sender: string) => (await listSenderBudgets(db)).find((b) => b.sender === sender)?.rate;

  beforeAll(async () => {
    ({ db, url: dbUrl } = await freshDatabase('cli_senders'));
    await db.query(
      "INSERT INTO runs (id, reason, operator, cohort_kind, params, status) VALUES ('senders-run', 'x', 't', 'file', '{}', 'running')",
    );
  });

  afterAll(async () => {
    await db?.end();
  });

  it('lists nothing before the first send, then each sender with its rate and its use now', async () => {
    const empty = await cli(['senders', 'list']);
    expect(empty).toMatchObject({ code: 0, stderr: '' });
    expect(empty.stdout).toMatch(/No sender budgets yet/);

    // A run takes 600 slots at the sender's 10 msg/s: its schedule runs up to 60 s ahead (less the
    // seconds a CLI process takes to start on a loaded machine).
    expect((await acquireSendBudget(db, 'senders-run', SENDER, 600, 10, 60_000)).granted).toBe(true);
    await acquireSendBudget(db, 'senders-run', 'email:relay.example:587', 1, Infinity, 60_000);
    const listed = await cli(['senders', 'list']);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SENDER\s+RATE\s+USE$/);
    expect(lines.find((l) => l.startsWith('email:relay.example:587'))).toMatch(/unlimited\s+no schedule \(unlimited\)/);
    expect(lines.find((l) => l.startsWith(SENDER))).toMatch(
      /10 msg\/s\s+in use: slots handed out [1-6]?\d\.\d s ahead/,
    );
    const json = (await cli(['senders', 'list', '--json'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const sms = json.find((j) => j.sender === SENDER);
    expect(sms).toMatchObject({ rate: 10, effectiveRate: 10, throttledShare: 0 });
    expect(sms.aheadSeconds).toBeGreaterThan(0);
    expect(sms.aheadSeconds).toBeLessThanOrEqual(60);
  });

  it("changes a sender's budget live: a run waiting behind the old rate gets its slot at once", async () => {
    await cli(['senders', 'set-rate', SENDER, '1']);
    await acquireSendBudget(db, 'senders-run', SENDER, 10, 1, 60_000);
    const waiting = await acquireSendBudget(db, 'senders-run', SENDER, 1, 1, 1_000);
    expect(waiting.granted).toBe(false); // at 1 msg/s the next slot is ~10 s away
    const raised = await cli(['senders', 'set-rate', SENDER, '1000']);
    expect(raised).toMatchObject({ code: 0, stderr: '' });
    expect(raised.stdout).toMatch(/Budget of sms:\+15550000000: 1 msg\/s -> 1000 msg\/s/);
    const now = await acquireSendBudget(db, 'senders-run', SENDER, 1, 1, 1_000);
    expect(now.granted).toBe(true);
    expect(now.waitMs).toBeLessThan(100);
    expect(now.senderRate).toBe(1000);

    const unlimited = await cli(['senders', 'set-rate', SENDER, 'unlimited']);
    expect(unlimited.code).toBe(0);
    expect(await rateOf(SENDER)).toBe(Infinity);
    expect((await cli(['senders', 'list'])).stdout).toMatch(/sms:\+15550000000\s+unlimited/);
  });

  it('refuses 0, rates below the minimum, bad words and keys (exit 2) and unknown senders (exit 1), changing nothing', async () => {
    await cli(['senders', 'set-rate', SENDER, '50']);
    const cases: Array<[string[], number, RegExp]> = [
      [
        ['senders', 'set-rate', SENDER, '0'],
        2,
        /error: rate 0 is not accepted: it would not mean 'unlimited' \(write 'unlimited' for no ceiling\); to stop sending, pause the runs/,
      ],
      [['senders', 'set-rate', SENDER, '0.001'], 2, /error: rate 0\.001 is below the minimum of 0\.2 messages\/s/],
      [
        ['senders', 'set-rate', SENDER, 'fast'],
        2,
        /error: rate "fast": must be a number of messages\/s or 'unlimited'/,
      ],
      [['senders', 'set-rate', SENDER, '-5'], 2, /error: rate -5 is below the minimum/],
      [
        ['senders', 'set-rate', 'twilio', '10'],
        2,
        /error: sender "twilio": must be a sender key as `senders list` shows it/,
      ],
      [
        ['senders', 'set-rate', 'sms:+15559999999', '10'],
        1,
        /error: unknown sender "sms:\+15559999999": no budget yet .*--create/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
    expect(await rateOf(SENDER)).toBe(50);
    expect(await rateOf('sms:+15559999999')).toBeUndefined();
    const created = await cli(['senders', 'set-rate', 'sms:+15559999999', '10', '--create']);
    expect(created.code).toBe(0);
    expect(await rateOf('sms:+15559999999')).toBe(10);
  });
});
