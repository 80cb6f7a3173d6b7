// `pinreset` (cli/main.ts) as operators run it: a real subprocess against the real stack (the
// test's own PostgreSQL database, the shared Temporal dev server, an in-process worker on this
// file's task queue, local Twilio and SMTP). Asserts stdout, exit codes and database effects.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { readCounts } from '../db/sql/read-counts';
import { workflowIdForRun } from '../domain/run';
import { PROJECT_ROOT } from '../stack';
import { startRun } from '../run-api/start-run';
import { progressQuery, type Progress } from '../workflows/api';
import { account, insertAccounts, phoneFor, type AccountSpec } from './support/accounts';
import {
  freshDatabase,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';
import { until as poll } from './support/until';

const FAIL_PREFIX = '+1212555'; // the local Twilio answers 21211 (invalid number): permanent
const failingPhone = (id: number) => `${FAIL_PREFIX}${String(id).padStart(4, '0')}`;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** support/until, but a probe that throws (a CLI call while the run is still starting) means "not yet". */
const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> =>
  poll(what, () => probe().catch(() => undefined), timeoutMs, 150);

/** The plan cohort, by hand: 60 active accounts (40 SMS, 15 email, 5 unreachable), 1 suspended (exposed too: SMS), 1 closed. */
function planCohort(): AccountSpec[] {
  const specs: AccountSpec[] = [];
  for (let id = 1; id <= 40; id++) specs.push(account(id)); // SMS
  for (let id = 41; id <= 50; id++) specs.push(account(id, { phone: null, phoneType: null })); // email
  for (let id = 51; id <= 55; id++) specs.push(account(id, { phoneType: 'landline' })); // email
  for (let id = 56; id <= 58; id++) specs.push(account(id, { smsOptOut: true, email: null })); // unreachable
  for (let id = 59; id <= 60; id++) specs.push(account(id, { phone: 'n/a', email: 'broken@' })); // unreachable
  specs.push(account(61, { status: 'suspended' })); // its exposed PIN is as usable: in the default cohort
  specs.push(account(62, { status: 'closed' })); // skipped if listed
  return specs;
}

describe('pinreset CLI', () => {
  let db: Db;
  let dbUrl: string;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  let dir: string;

  const env = (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => {
    const e: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: worker.taskQueue,
      TEMPORAL_UI_URL: inject('temporalUiUrl'),
      USER: 'cli-tester',
      PINRESET_ENV_FILE: '',
      ...extra,
    };
    return Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
  };

  function cli(args: string[], extraEnv?: Record<string, string | undefined>): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
        cwd: PROJECT_ROOT,
        env: env(extraEnv),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Runs CLI calls a few at a time (2 shared cores). */
  async function cliAll(
    calls: { args: string[]; env?: Record<string, string | undefined> }[],
    parallel = 3,
  ): Promise<CliResult[]> {
    const out: CliResult[] = new Array(calls.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < calls.length) {
          const i = next++;
          out[i] = await cli(calls[i].args, calls[i].env);
        }
      }),
    );
    return out;
  }

  const runCount = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM runs')).rows[0].n;
  const progress = (runId: string): Promise<Progress> =>
    client.workflow.getHandle(workflowIdForRun(runId)).query(progressQuery);

  beforeAll(async () => {
    ({ db, url: dbUrl } = await freshDatabase('cli'));
    providers = await startProviders({ twilio: { permanent: [{ prefix: FAIL_PREFIX, code: 21211 }] } });
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
    dir = await mkdtemp(path.join(os.tmpdir(), 'pinreset-cli-'));
    await insertAccounts(db, planCohort());
  });

  afterAll(async () => {
    for await (const wf of client.workflow.list({
      query: `TaskQueue = '${worker.taskQueue}' AND ExecutionStatus = 'Running'`,
    })) {
      await client.workflow
        .getHandle(wf.workflowId)
        .terminate('test finished')
        .catch(() => undefined);
    }
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('plan and start --dry-run count the cohort, its channel split, batches and duration, and change nothing', async () => {
    const cohortFile = path.join(dir, 'plan-cohort.csv');
    await writeFile(cohortFile, 'account_id\n1\n2\n61\n62\n999999\n2\n');
    const [all, emailOnly, file, dry] = await cliAll(
      [
        { args: ['plan', '--json', '--batch-size', '7', '--rate', '5'] },
        { args: ['plan', '--json', '--policy', 'email_only', '--canary', '10'] },
        { args: ['plan', '--json', '--cohort-file', cohortFile] },
        { args: ['start', '--dry-run', '--batch-size', '7', '--rate', '5'] },
      ],
      4,
    );
    for (const r of [all, emailOnly, file, dry]) expect(r.stderr).toBe('');
    expect([all.code, emailOnly.code, file.code, dry.code]).toEqual([0, 0, 0, 0]);

    const a = JSON.parse(all.stdout);
    expect(a).toMatchObject({
      cohort: { kind: 'all_active', accounts: 61, unknown: 0 },
      resets: 61,
      skipped: { closed: 0, deleted: 0, unknown: 0 },
      channels: { sms: 41, email: 15, unreachable: 5, unreachableByReason: { opted_out: 3, invalid_number: 2 } },
      batches: 9,
      messages: 56,
      params: { batchSize: 7, ratePerSecond: 5, policy: 'sms_then_email' },
    });
    expect(a.scan).toMatchObject({ accounts: 61 });

    const e = JSON.parse(emailOnly.stdout);
    expect(e).toMatchObject({
      channels: { sms: 0, email: 56, unreachable: 5, unreachableByReason: { no_contact: 3, invalid_email: 2 } },
      batches: 2,
      canaryAccounts: 10,
    });

    // 1 and 2 (listed twice), suspended 61 (reset), closed 62 (skipped), 999999 unknown (line 6).
    expect(JSON.parse(file.stdout)).toMatchObject({
      cohort: { kind: 'file', accounts: 5, duplicates: 1, unknown: 1, unknownLines: [6] },
      resets: 3,
      skipped: { closed: 1, unknown: 1 },
      channels: { sms: 3, email: 0, unreachable: 0 },
      batches: 1,
    });

    expect(dry.stdout).toMatch(/^Dry run \(nothing was started\)/);
    expect(dry.stdout).toMatch(/cohort +: 61 accounts \(every account not closed or deleted\)/);
    expect(dry.stdout).toMatch(/SMS 41 \(67\.2%\) +email 15 \(24\.6%\) +unreachable 5 \(8\.2%\)/);
    expect(dry.stdout).toMatch(/batches +: 9 of up to 7 accounts/);
    expect(dry.stdout).toMatch(/about 11s to send 56 messages at 5\/s/);

    expect(await runCount()).toBe(0);
    expect((await db.query('SELECT 1 FROM ledger')).rowCount).toBe(0);
  });

  it('start runs every active account; it prints the run id and Web UI address; status --watch follows it to the end', async () => {
    const started = await cli([
      'start',
      '--reason',
      'INC-CLI-1',
      '--run-id',
      'cli-all-1',
      '--rate',
      'unlimited',
      '--batch-size',
      '20',
    ]);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/^Started run cli-all-1\n/);
    expect(started.stdout).toContain(
      `web ui   : ${inject('temporalUiUrl')}/namespaces/default/workflows/pinreset-run-cli-all-1`,
    );
    const run = await db.query('SELECT reason, operator, cohort_kind FROM runs WHERE id = $1', ['cli-all-1']);
    expect(run.rows[0]).toEqual({ reason: 'INC-CLI-1', operator: 'cli-tester', cohort_kind: 'all_active' });

    const watched = await cli(['status', 'cli-all-1', '--watch', '--interval', '0.5']);
    expect(watched.code).toBe(0);
    // Every frame starts with the time of its reading; the last line says how the run ended.
    const frames = watched.stdout.split(/\n(?=\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] Run cli-all-1 )/);
    expect(frames[0]).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] Run cli-all-1 /);
    const last = frames[frames.length - 1];
    expect(last).toMatch(/state +: COMPLETED/);
    expect(last.trimEnd().endsWith('Run cli-all-1 completed.')).toBe(true);
    expect(last).toMatch(/100\.0% +61 of 61 settled/);
    expect(last).toContain('reset 61 (skipped 0) | sms 41 | email 15 (fell back 0) | unreachable 5 | failed 0');
    expect(await readCounts(db, 'cli-all-1')).toMatchObject({
      planned: 61,
      reset: 61,
      sentSms: 41,
      sentEmail: 15,
      unreachable: 5,
      pending: 0,
    });
  });

  it('report streams per-account outcomes as CSV or JSON Lines, only ledger fields, no contact data', async () => {
    const outFile = path.join(dir, 'report.csv');
    const [csv, jsonl, toFile] = await cliAll([
      { args: ['report', 'cli-all-1'] },
      { args: ['report', 'cli-all-1', '--format', 'jsonl', '--outcome', 'unreachable,failed'] },
      { args: ['report', 'cli-all-1', '--out', outFile] },
    ]);
    expect([csv.code, jsonl.code, toFile.code]).toEqual([0, 0, 0]);

    const lines = csv.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(
      'account_id,outcome,channel,fell_back,provider_message_id,error_code,reset_at,notified_at,attempts,resolved_by,delivery_state,delivery_code,delivery_at,delivery_action',
    );
    expect(lines).toHaveLength(62);
    const rows = new Map(lines.slice(1).map((l) => [Number(l.split(',')[0]), l.split(',')]));
    expect([...rows.keys()]).toEqual(Array.from({ length: 61 }, (_, i) => i + 1));
    for (const r of rows.values()) expect(r).toHaveLength(14);
    expect(rows.get(1)!.slice(1, 4)).toEqual(['sent', 'sms', 'false']);
    expect(rows.get(1)![4]).toMatch(/^SM[0-9a-f]{32}$/);
    expect(rows.get(1)![8]).toBe('1');
    expect(rows.get(41)!.slice(1, 3)).toEqual(['sent', 'email']);
    expect(rows.get(56)!.slice(1, 6)).toEqual(['unreachable', '', 'false', '', 'opted_out']);
    expect(rows.get(59)![5]).toBe('invalid_number');
    expect(rows.get(56)![7]).toBe(''); // never notified

    const j = jsonl.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(j.map((r) => r.account_id)).toEqual([56, 57, 58, 59, 60]);
    expect(j.map((r) => r.error_code)).toEqual([
      'opted_out',
      'opted_out',
      'opted_out',
      'invalid_number',
      'invalid_number',
    ]);
    expect(j.every((r) => r.outcome === 'unreachable' && r.notified_at === null)).toBe(true);

    expect(await readFile(outFile, 'utf8')).toBe(csv.stdout);
    expect(toFile.stderr).toContain('Wrote 61 rows');
    expect(csv.stderr).toBe('Top error codes: opted_out unreachable 3, invalid_number unreachable 2\n');
    expect((await readdir(dir)).filter((f) => f.endsWith('.partial'))).toEqual([]);

    for (const out of [csv.stdout, jsonl.stdout]) {
      for (const spec of planCohort()) {
        if (spec.phone && spec.phone !== 'n/a') expect(out).not.toContain(spec.phone);
        if (spec.email && spec.email !== 'broken@') expect(out).not.toContain(spec.email);
        expect(out).not.toContain(`Customer ${spec.id}`);
      }
      expect(out).not.toContain('+1415555');
      expect(out).not.toContain('mail.example');
    }
  });

  it('steers a run: approve after the canary, pause with a reason, set-rate, resume, cancel', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => 1000 + i);
    await insertAccounts(
      db,
      ids.map((id) => account(id)),
    );
    const cohortFile = path.join(dir, 'ctl.txt');
    await writeFile(cohortFile, `${ids.join('\n')}\n`);
    const runId = 'cli-ctl-1';
    const started = await cli([
      'start',
      '--reason',
      'INC-CTL',
      '--operator',
      'alice@secops',
      '--run-id',
      runId,
      '--cohort-file',
      cohortFile,
      '--rate',
      '20',
      '--batch-size',
      '20',
      '--concurrency',
      '1',
      '--canary',
      '20',
    ]);
    expect(started.code).toBe(0);
    expect(started.stdout).toContain('cohort   : 200 accounts from');

    await until('the canary to finish', async () => (await progress(runId)).awaitingApproval);
    const waiting = await cli(['status', runId]);
    expect(waiting.code).toBe(0);
    expect(waiting.stdout).toMatch(/^Run cli-ctl-1 +\[live \(progress query\); counts from the ledger at /);
    expect(waiting.stdout).toContain('AWAITING APPROVAL');
    expect(waiting.stdout).toMatch(/20 of 200 settled/);

    const approved = await cli(['approve', runId, '--operator', 'lead@secops']);
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain('approved by lead@secops');
    await until('the rest to start', async () => (await progress(runId)).counts.sentSms > 20);

    const paused = await cli(['pause', runId, '--reason', 'checking templates']);
    expect(paused.code).toBe(0);
    await until('the pause to settle', async () => {
      const p = await progress(runId);
      const row = await db.query('SELECT status FROM runs WHERE id = $1', [runId]);
      return p.paused && p.batches.inFlight === 0 && row.rows[0].status === 'paused';
    });
    const [live, badRate, setRate] = await cliAll([
      { args: ['status', runId, '--json'] },
      { args: ['set-rate', runId, '-5'] },
      { args: ['set-rate', runId, '5'] },
    ]);
    expect(live.code).toBe(0);
    expect(JSON.parse(live.stdout)).toMatchObject({
      runId,
      source: 'live',
      paused: true,
      pauseReason: 'checking templates',
      autoPaused: false,
      status: 'paused',
      etaSeconds: null,
    });
    expect(badRate).toMatchObject({
      code: 2,
      stdout: '',
      stderr: "error: ratePerSecond must be a number from 0.2 to 100000, got -5 (or 'unlimited')\n",
    });
    expect(setRate.code).toBe(0);
    expect(setRate.stdout).toBe(`Rate of run ${runId}: 20 -> 5 messages/s\n`);
    expect((await db.query('SELECT rate_per_second FROM runs WHERE id = $1', [runId])).rows[0].rate_per_second).toBe(5);

    const resumed = await cli(['resume', runId]);
    expect(resumed.code).toBe(0);
    await until('the run to resume', async () => !(await progress(runId)).paused);

    const cancelled = await cli(['cancel', runId, '--reason', 'wrong cohort']);
    expect(cancelled.code).toBe(0);
    const result = await client.workflow.getHandle(workflowIdForRun(runId)).result();
    expect(result.status).toBe('cancelled');
    expect(result.counts.sentSms).toBeLessThan(200);
    const row = await db.query('SELECT status, status_reason, operator FROM runs WHERE id = $1', [runId]);
    expect(row.rows[0]).toEqual({ status: 'cancelled', status_reason: 'wrong cohort', operator: 'alice@secops' });

    const late = await cli(['pause', runId]);
    expect(late).toMatchObject({ code: 1, stderr: 'error: run cli-ctl-1 is cancelled already: nothing to steer\n' });
  });

  it('redrive notifies again only the accounts whose notification failed, without resetting their PINs again', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => 2000 + i);
    const failing = ids.slice(10);
    await insertAccounts(
      db,
      ids.map((id) => (id >= 2010 ? account(id, { phone: failingPhone(id), email: null }) : account(id))),
    );
    const cohortFile = path.join(dir, 'redrive-source.csv');
    await writeFile(cohortFile, `id\n${ids.join('\n')}\n900000001\n900000002\n`);

    const src = await cli([
      'start',
      '--reason',
      'INC-SRC',
      '--run-id',
      'cli-src-1',
      '--cohort-file',
      cohortFile,
      '--allow-unknown',
      '--rate',
      'unlimited',
      '--auto-pause-rate',
      '1',
      '--wait',
    ]);
    expect(src.code).toBe(0);
    expect(src.stdout).toContain(
      '2 account id(s) not in the accounts table: line 22, 23: recorded, skipped as account_deleted',
    );
    expect(src.stdout).toContain('Run cli-src-1 completed');
    const states = await db.query(
      `SELECT account_id, reset_state, notify_state, error_code FROM ledger WHERE run_id = 'cli-src-1' ORDER BY account_id`,
    );
    const byId = new Map(states.rows.map((r) => [r.account_id, r]));
    for (const id of failing)
      expect(byId.get(id)).toMatchObject({ reset_state: 'reset', notify_state: 'failed', error_code: '21211' });
    for (const id of ids.slice(0, 10)) expect(byId.get(id)).toMatchObject({ notify_state: 'sent' });
    for (const id of [900000001, 900000002])
      expect(byId.get(id)).toMatchObject({
        reset_state: 'skipped',
        notify_state: 'skipped',
        error_code: 'account_deleted',
      });

    // Since the reset, five customers set a new PIN; the SMS route is fixed.
    await db.query(
      `UPDATE accounts SET pin_status = 'set', pin_hash = '\\x0a0b'::bytea, pin_salt = '\\x0c'::bytea WHERE id BETWEEN 2010 AND 2014`,
    );
    const before = await db.query(
      `SELECT id, credential_version FROM accounts WHERE id BETWEEN 2000 AND 2019 ORDER BY id`,
    );
    expect(before.rows.every((r) => r.credential_version === 2)).toBe(true);
    providers.twilio.setFaults({ permanent: [] });

    const redriven = await cli([
      'redrive',
      'cli-src-1',
      '--reason',
      'INC-SRC-redrive',
      '--run-id',
      'cli-redrive-1',
      '--wait',
      '--json',
    ]);
    expect(redriven.code, redriven.stderr).toBe(0);
    const [startedLine, resultLine] = redriven.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(startedLine).toMatchObject({
      started: true,
      sourceRunId: 'cli-src-1',
      runId: 'cli-redrive-1',
      accounts: 10,
      handledSince: 0,
    });
    expect(startedLine.webUi).toContain('/workflows/pinreset-run-cli-redrive-1');
    expect(resultLine.result).toMatchObject({
      status: 'completed',
      counts: { planned: 10, reset: 10, sentSms: 10, failed: 0 },
    });

    const run = await db.query(
      `SELECT cohort_kind, operator, reason, source_run_id FROM runs WHERE id = 'cli-redrive-1'`,
    );
    expect(run.rows[0]).toEqual({
      cohort_kind: 'redrive',
      operator: 'cli-tester',
      reason: 'INC-SRC-redrive',
      source_run_id: 'cli-src-1',
    });
    // Found from its source run in Temporal's list too (visibility is eventually consistent).
    const linked = await until('the redrive listed by its source', async () => {
      const found: string[] = [];
      for await (const w of client.workflow.list({ query: `PinresetSourceRunId = 'cli-src-1'` }))
        found.push(w.workflowId);
      return found.length ? found : undefined;
    });
    expect(linked).toEqual(['pinreset-run-cli-redrive-1']);
    const ledger = await db.query(
      `SELECT account_id, reset_state, notify_state, channel FROM ledger WHERE run_id = 'cli-redrive-1' ORDER BY account_id`,
    );
    expect(ledger.rows.map((r) => r.account_id)).toEqual(failing);
    expect(
      ledger.rows.every((r) => r.reset_state === 'reset' && r.notify_state === 'sent' && r.channel === 'sms'),
    ).toBe(true);

    // Not reset again: same credential version; the new PINs customers set are untouched.
    const after = await db.query(
      `SELECT id, credential_version, pin_status, encode(pin_hash, 'hex') AS hash FROM accounts WHERE id BETWEEN 2000 AND 2019 ORDER BY id`,
    );
    expect(after.rows.map((r) => r.credential_version)).toEqual(before.rows.map((r) => r.credential_version));
    for (const r of after.rows.filter((r) => r.id >= 2010 && r.id <= 2014))
      expect(r).toMatchObject({ pin_status: 'set', hash: '0a0b' });
    for (const r of after.rows.filter((r) => r.id >= 2015)) expect(r.pin_status).toBe('reset_required');

    // Exactly one SMS each: the failed ones got theirs now, the others were not messaged again.
    const perRecipient = providers.twilio.countsByRecipient();
    for (const id of failing) expect(perRecipient.get(failingPhone(id))).toBe(1);
    for (const id of ids.slice(0, 10)) expect(perRecipient.get(phoneFor(id))).toBe(1);

    // A second redrive of the same run finds everyone notified since: it starts nothing.
    const runsBefore = await runCount();
    // Without --reason: the source run's reason (nothing starts here anyway).
    const again = await cli(['redrive', 'cli-src-1']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(
      'Nothing to redrive: run cli-src-1 has no failed notifications left to retry (10 were notified since by a later run)',
    );
    expect(await runCount()).toBe(runsBefore);
  });

  it('a redrive run still resets a PIN that no earlier run reset (safety net in pinreset_reset_batch)', async () => {
    await insertAccounts(db, [account(2100)]);
    const { handle } = await startRun(db, client, {
      runId: 'cli-redrive-fresh',
      reason: 'INC-X',
      operator: 't',
      taskQueue: worker.taskQueue,
      accountIds: [2100],
      params: { cohort: 'redrive', ratePerSecond: 'unlimited' },
    });
    expect((await handle.result()).counts).toMatchObject({ reset: 1, sentSms: 1 });
    const a = await db.query('SELECT credential_version, pin_status FROM accounts WHERE id = 2100');
    expect(a.rows[0]).toEqual({ credential_version: 2, pin_status: 'reset_required' });
  });

  it('list shows recent runs with status, counts from the last checkpoint, operator and reason', async () => {
    const [text, json] = await cliAll([{ args: ['list', '--limit', '10'] }, { args: ['list', '--json'] }]);
    expect([text.code, json.code]).toEqual([0, 0]);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^RUN +STATUS +PHASE +COHORT +PROGRESS +PLANNED +SENT +UNREACH +FAILED +PENDING +STARTED \(UTC\) +OPERATOR +REASON$/,
    );
    expect(lines.find((l) => l.startsWith('cli-all-1 '))).toMatch(
      /^cli-all-1 +completed +completed +all_active +100\.0% +61 +56 +5 +0 +0 +\S+ \S+ +cli-tester +INC-CLI-1$/,
    );
    expect(text.stdout).toContain('cli-redrive-1: redrive of cli-src-1');
    expect(lines.find((l) => l.startsWith('cli-ctl-1 '))).toMatch(/cancelled .* alice@secops +INC-CTL$/);
    expect(text.stdout).toContain('cli-ctl-1: cancelled (wrong cohort)');
    const rows = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => r.id)).toEqual([
      'cli-redrive-fresh',
      'cli-redrive-1',
      'cli-src-1',
      'cli-ctl-1',
      'cli-all-1',
    ]);
    expect(rows[1]).toMatchObject({
      status: 'completed',
      cohortKind: 'redrive',
      counts: { sentSms: 10 },
      operator: 'cli-tester',
      sourceRunId: 'cli-src-1',
      settledPercent: 100,
      paused: false,
    });
  });

  it('every bad argument: a one-line error naming the problem, exit 2, and nothing started', async () => {
    const badIds = path.join(dir, 'bad-ids.txt');
    await writeFile(badIds, '1\n2\nabc\n3\n-4\n');
    const unknownIds = path.join(dir, 'unknown-ids.csv');
    await writeFile(unknownIds, 'account_id\n1\n900000001\n900000002\n2\n');
    const runsBefore = await runCount();
    const usage: [string[], RegExp, Record<string, string | undefined>?][] = [
      [
        ['start', '--reason', 'x', '--rate', '-5'],
        /^error: option '--rate <r>' argument '-5' is invalid\. ratePerSecond must be a number from 0\.2 to 100000, got -5 \(or 'unlimited'\)$/,
      ],
      [
        ['start', '--reason', 'x', '--rate', '0'],
        /^error: option '--rate <r>' argument '0' is invalid\. a rate of 0 is not accepted: to stop sending, pause the run; for no ceiling, use 'unlimited'$/,
      ],
      [
        ['start', '--reason', 'x', '--rate', '0.001'],
        /argument '0\.001' is invalid\. ratePerSecond must be at least 0\.2 messages\/s/,
      ],
      [['start', '--reason', 'x', '--rate', 'fast'], /option '--rate <r>' argument 'fast' is invalid/],
      [
        ['start', '--reason', 'x', '--batch-size', '0'],
        /option '--batch-size <n>' argument '0' is invalid\. must be an integer from 1 to 10000/,
      ],
      [
        ['start', '--reason', 'x', '--concurrency', '2.5'],
        /option '--concurrency <n>' argument '2\.5' is invalid\. must be an integer/,
      ],
      [
        ['start', '--reason', 'x', '--policy', 'carrier_pigeon'],
        /option '--policy <policy>' argument 'carrier_pigeon' is invalid\. must be one of sms_then_email, sms_only, email_only/,
      ],
      [['start', '--reason', 'x', '--auto-pause-rate', '1.5'], /--auto-pause-rate .* must be a number from 0 to 1$/],
      [['start', '--reason', 'x', '--retry-after', '0'], /--retry-after .* must be a number from 1 to 86400$/],
      [
        ['start', '--reason', 'x', '--receipt-deadline', 'soon'],
        /--receipt-deadline .* must be a number from 1 to 172800$/,
      ],
      [
        ['start', '--reason', 'x', '--filtered-pause-rate', '2'],
        /--filtered-pause-rate .* must be a number from 0 to 1$/,
      ],
      [['start', '--rate', '10'], /^error: --reason is required/],
      [['start', '--reason', '   '], /^error: --reason is required/],
      [['start', '--reason', 'x', '--run-id', 'Bad_Id'], /option '--run-id <id>' argument 'Bad_Id' is invalid/],
      [
        ['start', '--reason', 'x', '--cohort-file', path.join(dir, 'missing.txt')],
        /^error: cannot read cohort file .*missing\.txt: no such file$/,
      ],
      [
        ['start', '--reason', 'x', '--cohort-file', badIds],
        /^error: cohort file .*bad-ids\.txt: 2 line\(s\) do not hold a positive integer account id: line 3, 5$/,
      ],
      [
        ['start', '--reason', 'x', '--cohort-file', unknownIds],
        /^error: cohort file .*unknown-ids\.csv: 2 account id\(s\) not in the accounts table: line 3, 4; .*--allow-unknown/,
      ],
      [['start', '--dry-run', '--cohort-file', unknownIds], /2 account id\(s\) not in the accounts table: line 3, 4/],
      [
        ['start', '--reason', 'x', '--run-id', 'cli-all-1'],
        /^error: cannot start the run: run cli-all-1 exists already$/,
      ],
      [
        ['set-rate', 'cli-all-1', 'fast'],
        /^error: command-argument value 'fast' is invalid for argument 'rate'\. must be a number of messages\/s or 'unlimited'$/,
      ],
      [
        ['set-rate', 'cli-all-1', '0'],
        /^error: a rate of 0 is not accepted: to stop sending, pause the run; for no ceiling, use 'unlimited'$/,
      ],
      [['report', 'cli-all-1', '--format', 'xml'], /argument 'xml' is invalid\. must be one of csv, jsonl/],
      [
        ['report', 'cli-all-1', '--outcome', 'lost'],
        /argument 'lost' is invalid\. must be one or more of sent, failed/,
      ],
      [['status', 'Not_A_Run'], /invalid for argument 'runId'/],
      [['launch'], /^error: unknown command 'launch'/],
      [
        ['start', '--reason', 'x'],
        /^error: invalid configuration: DATABASE_URL is missing/,
        { DATABASE_URL: undefined },
      ],
      [
        ['pause', 'cli-all-1'],
        /^error: invalid configuration: TEMPORAL_ADDRESS must be host:port/,
        { TEMPORAL_ADDRESS: 'temporal' },
      ],
    ];
    const failure: [string[], RegExp, Record<string, string | undefined>?][] = [
      [['status', 'no-such-run'], /^error: unknown run "no-such-run": no such run in the database/],
      [['pause', 'no-such-run'], /unknown run "no-such-run"/],
      [['report', 'no-such-run'], /unknown run "no-such-run"/],
      [['redrive', 'no-such-run', '--reason', 'x'], /unknown run "no-such-run"/],
      [
        ['start', '--reason', 'x'],
        /^error: cannot reach Temporal at 127\.0\.0\.1:1/,
        { TEMPORAL_ADDRESS: '127.0.0.1:1' },
      ],
    ];
    const cases = [
      ...usage.map(([args, re, e]) => [args, re, e, 2] as const),
      ...failure.map(([args, re, e]) => [args, re, e, 1] as const),
    ];
    const results = await cliAll(
      cases.map(([args, , e]) => ({ args, env: e })),
      4,
    );
    results.forEach((r, i) => {
      const [args, pattern, , code] = cases[i];
      const what = `pinreset ${args.join(' ')}`;
      expect(r.code, `${what}: ${r.stderr}`).toBe(code);
      const errLines = r.stderr.trimEnd().split('\n');
      expect(errLines, what).toHaveLength(1);
      expect(errLines[0], what).toMatch(pattern);
      if (!args.includes('--dry-run')) expect(r.stdout, what).toBe('');
    });
    expect(await runCount()).toBe(runsBefore);
  });

  // Last: it stops the worker for good (afterAll terminates what is left).
  it('status falls back to the last checkpoint in PostgreSQL when no worker answers, and says so', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => 3000 + i);
    await insertAccounts(
      db,
      ids.map((id) => account(id)),
    );
    const cohortFile = path.join(dir, 'no-worker.txt');
    await writeFile(cohortFile, `${ids.join('\n')}\n`);
    const runId = 'cli-nw-1';
    const started = await cli([
      'start',
      '--reason',
      'INC-NW',
      '--run-id',
      runId,
      '--cohort-file',
      cohortFile,
      '--rate',
      '5',
      '--batch-size',
      '10',
      '--concurrency',
      '1',
    ]);
    expect(started.code).toBe(0);
    await until('a first SMS', async () => (await progress(runId)).counts.sentSms > 0);
    expect((await cli(['pause', runId, '--reason', 'provider maintenance'])).code).toBe(0);
    await until('the pause to settle', async () => {
      const p = await progress(runId);
      const row = await db.query('SELECT status FROM runs WHERE id = $1', [runId]);
      return p.paused && p.batches.inFlight === 0 && row.rows[0].status === 'paused';
    });

    await worker.stop();
    const [json, text] = await cliAll([
      { args: ['status', runId, '--json', '--timeout', '1'] },
      { args: ['status', runId, '--timeout', '1'] },
    ]);
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout);
    expect(s).toMatchObject({
      source: 'checkpoint',
      status: 'paused',
      paused: true,
      pauseReason: 'provider maintenance',
      reason: 'INC-NW',
    });
    expect(s.fallbackReason).toMatch(/no worker answered the progress query within 1 s/);
    expect(s.counts.planned).toBe(50);
    expect(s.counts.sentSms).toBeGreaterThan(0);
    expect(text.code).toBe(0);
    // The server either lets the query time out or refuses it at once (no poller on the sticky queue).
    expect(text.stdout).toMatch(
      /^Run cli-nw-1 +\[last checkpoint in PostgreSQL, .* ago\): (no worker answered|the progress query failed)/,
    );
    expect(text.stdout).toContain('PAUSED (by an operator): provider maintenance');
  });
});
