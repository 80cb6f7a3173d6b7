// Least privilege (db/migrations/005_roles.sql, 011_least_privilege.sql): a worker logged in as a
// member of pinreset_worker runs a whole pipeline run, and cannot delete, truncate, read or write
// `accounts` at all (PINs and contact data only through the SECURITY DEFINER functions), change
// anything else, or change the schema.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import pg from 'pg';
import { createPool, type Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { ensureWorkerLogin } from '../db/sql/ensure-worker-login';
import { account, insertAccounts, ledgerOf } from './support/accounts';
import {
  freshDatabase,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';

describe('the pinreset_worker role', () => {
  let admin: Db; // schema owner / operator
  let adminUrl: string;
  let workerDb: Db; // the worker's own login
  let probe: pg.Client; // same login, for the statements that must fail
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  const suffix = randomBytes(4).toString('hex');
  const login = `pinreset_worker_t_${suffix}`;
  const outsider = `pinreset_outsider_t_${suffix}`;
  const password = randomBytes(12).toString('hex');
  let runId = '';

  const urlFor = (user: string) => {
    const u = new URL(adminUrl);
    u.username = user;
    u.password = password;
    return u.toString();
  };

  beforeAll(async () => {
    ({ db: admin, url: adminUrl } = await freshDatabase('roles'));
    // What a deployment does: a login user in the group role.
    await admin.query(`CREATE ROLE ${login} LOGIN PASSWORD '${password}' IN ROLE pinreset_worker`);
    await admin.query(`CREATE ROLE ${outsider} LOGIN PASSWORD '${password}'`);
    workerDb = createPool(urlFor(login), 8);
    probe = new pg.Client({ connectionString: urlFor(login) });
    await probe.connect();
    providers = await startProviders();
    worker = await startWorker(providers.deps(workerDb));
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await probe?.end().catch(() => undefined);
    await workerDb?.end();
    for (const role of [login, outsider]) await admin?.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await admin?.end();
  });

  it('is a NOLOGIN group role, and every pinreset_* function runs as its owner with a pinned search_path', async () => {
    const role = await admin.query(
      `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = 'pinreset_worker'`,
    );
    expect(role.rows).toEqual([
      { rolcanlogin: false, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolbypassrls: false },
    ]);
    const fns = await admin.query(
      `SELECT p.proname, p.prosecdef, p.proconfig, has_function_privilege('pinreset_worker', p.oid, 'EXECUTE') AS worker_may,
              has_function_privilege('${outsider}', p.oid, 'EXECUTE') AS outsider_may
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'public' AND p.proname LIKE 'pinreset\\_%' ORDER BY 1`,
    );
    expect(fns.rows.map((f) => f.proname)).toEqual(
      expect.arrayContaining([
        'pinreset_materialize_active_cohort',
        'pinreset_plan_batches',
        'pinreset_reset_batch',
        'pinreset_claim_notify_chunk',
        'pinreset_record_outcomes',
        'pinreset_counts',
        'pinreset_acquire_send_slots',
        'pinreset_acquire_reset_slots',
        'pinreset_penalize_send_rate',
      ]),
    );
    for (const f of fns.rows) {
      expect(f, f.proname).toMatchObject({
        prosecdef: true,
        proconfig: ['search_path=public, pg_temp'],
        worker_may: true,
        outsider_may: false,
      });
    }
    // No table privilege on accounts is left to the role, not even on single columns.
    const grants = await admin.query(
      `SELECT privilege_type, column_name FROM information_schema.column_privileges
       WHERE table_name = 'accounts' AND grantee = 'pinreset_worker'
       UNION ALL SELECT privilege_type, NULL FROM information_schema.table_privileges
       WHERE table_name = 'accounts' AND grantee = 'pinreset_worker'`,
    );
    expect(grants.rows).toEqual([]);
    // Nobody but the owner may create objects in schema public.
    const create = await admin.query(
      `SELECT has_schema_privilege('pinreset_worker', 'public', 'CREATE') AS w, has_schema_privilege('${outsider}', 'public', 'CREATE') AS o`,
    );
    expect(create.rows[0]).toEqual({ w: false, o: false });
  });

  it('runs a whole pipeline run as the worker login', async () => {
    await insertAccounts(admin, [
      ...Array.from({ length: 40 }, (_, i) => account(i + 1)),
      account(41, { phone: null }), // email
      account(42, { phone: null, email: null }), // unreachable
      account(43, { status: 'closed' }), // not in an all-active cohort
    ]);
    // Creating the run (its row, the workflow) is the operator's act.
    let handle;
    ({ runId, handle } = await startRun(admin, client, {
      reason: 'INC-roles',
      operator: 'secops',
      taskQueue: worker.taskQueue,
      params: { batchSize: 20, ratePerSecond: 'unlimited' },
    }));
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.counts).toMatchObject({
      planned: 42,
      reset: 42,
      sentSms: 40,
      sentEmail: 1,
      unreachable: 1,
      failed: 0,
      pending: 0,
    });
    const ledger = await ledgerOf(admin, runId);
    expect([...ledger.values()].every((r) => r.credential_version === 2 && r.pin_status === 'reset_required')).toBe(
      true,
    );
    const run = await admin.query(
      'SELECT status, started_at IS NOT NULL AS started, resets_done_at IS NOT NULL AS resets_done FROM runs WHERE id = $1',
      [runId],
    );
    expect(run.rows[0]).toEqual({ status: 'completed', started: true, resets_done: true });
    // The run's first step refreshed the ledger's statistics itself (014), as the worker login.
    const stats = await admin.query("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'ledger'");
    expect(Number(stats.rows[0].analyze_count)).toBeGreaterThan(0);
    const checkpoints = await admin.query('SELECT count(*)::int AS n FROM checkpoints WHERE run_id = $1', [runId]);
    expect(checkpoints.rows[0].n).toBeGreaterThan(1);
    expect(providers.twilio.messages()).toHaveLength(40);
  });

  it('cannot delete, truncate, read or write accounts directly, or write outside its columns', async () => {
    const denied = [
      'DELETE FROM accounts',
      'DELETE FROM accounts WHERE id = 1',
      'TRUNCATE accounts',
      'TRUNCATE ledger',
      'DELETE FROM ledger',
      'DELETE FROM runs',
      'DELETE FROM checkpoints',
      'SELECT pin_hash FROM accounts LIMIT 1',
      'SELECT pin_salt, pin_algo FROM accounts LIMIT 1',
      'SELECT full_name FROM accounts LIMIT 1',
      'SELECT account_number FROM accounts LIMIT 1',
      'SELECT * FROM accounts LIMIT 1',
      // The verifier cannot be read back through RETURNING either.
      "UPDATE accounts SET pin_status = 'reset_required' WHERE id = 1 RETURNING pin_hash",
      "UPDATE accounts SET phone = '+15555550100' WHERE id = 1",
      "UPDATE accounts SET email = 'attacker@example.com' WHERE id = 1",
      "UPDATE accounts SET status = 'closed' WHERE id = 1",
      'UPDATE accounts SET sms_opt_out = true WHERE id = 1',
      "INSERT INTO accounts (id, account_number, full_name) VALUES (999, 'X', 'X')",
      "INSERT INTO runs (id, reason, operator, cohort_kind, params) VALUES ('evil-run', 'r', 'o', 'file', '{}')",
      "UPDATE runs SET reason = 'rewritten'",
      "UPDATE runs SET params = '{}'",
      "UPDATE checkpoints SET note = 'rewritten'",
      'SELECT * FROM schema_migrations',
      'CREATE TABLE stolen (x text)',
      'CREATE FUNCTION pinreset_evil() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
      'DROP TABLE ledger',
      'ALTER TABLE accounts ADD COLUMN evil text',
      'ALTER TABLE ledger DISABLE TRIGGER ALL',
      'CREATE INDEX evil ON accounts (phone)',
      `SET ROLE postgres`,
      // Contact data and PIN columns: only through the functions, for accounts in a run's ledger.
      'SELECT id, status FROM accounts WHERE id = 1',
      'SELECT phone, email FROM accounts WHERE id = 1',
      'SELECT count(*) FROM accounts',
      "UPDATE accounts SET pin_status = 'reset_required', updated_at = now() WHERE id = 1",
      'UPDATE accounts SET pin_hash = NULL, pin_salt = NULL WHERE id = 1',
      'UPDATE accounts SET credential_version = credential_version + 1 WHERE id = 1',
      // Shadowing a table or function through a schema of its own: no CREATE anywhere.
      'CREATE SCHEMA evil',
    ];
    for (const sql of denied) {
      const err = await probe.query(sql).then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(err, `should be refused: ${sql}`).toBeDefined();
      // 42501 insufficient_privilege; "must be owner" is 42501 too.
      expect(err!.code, `${sql}: ${err!.message}`).toBe('42501');
    }
    // And what it needs does work: the pipeline tables directly (the last test's run is there).
    const ledger = await probe.query('SELECT count(*)::int AS n FROM ledger');
    expect(ledger.rows[0].n).toBeGreaterThan(0);
    const runs = await probe.query(
      "UPDATE runs SET status_reason = status_reason WHERE status = 'completed' RETURNING id",
    );
    expect(runs.rowCount).toBe(1);
  });

  it('cannot make the functions read a table of its own (pinned search_path)', async () => {
    const real = await probe.query('SELECT planned, reset FROM pinreset_counts($1)', [runId]);
    expect(real.rows[0]).toMatchObject({ planned: 42, reset: 42 });
    // Without the pinned search_path, pg_temp comes first and this empty table would be read.
    await probe.query('CREATE TEMP TABLE ledger (LIKE public.ledger)');
    try {
      const counts = await probe.query('SELECT planned, reset FROM pinreset_counts($1)', [runId]);
      expect(counts.rows[0]).toEqual(real.rows[0]);
    } finally {
      await probe.query('DROP TABLE pg_temp.ledger');
    }
  });

  it('`migrate` creates the worker login in the role, and re-passwords it on the next run', async () => {
    const user = `pinreset_worker_m_${suffix}`;
    try {
      expect(await ensureWorkerLogin(admin, user, 'first-password-123')).toBe('created');
      const asUser = (pw: string) => {
        const u = new URL(adminUrl);
        u.username = user;
        u.password = pw;
        return new pg.Client({ connectionString: u.toString() });
      };
      const c1 = asUser('first-password-123');
      await c1.connect();
      const member = await c1.query(`SELECT pg_has_role(current_user, 'pinreset_worker', 'MEMBER') AS m`);
      expect(member.rows[0].m).toBe(true);
      expect(
        (await c1.query('SELECT 1 FROM accounts LIMIT 1').catch((e: { code?: string }) => e)) as { code?: string },
      ).toMatchObject({ code: '42501' });
      await c1.end();
      expect(await ensureWorkerLogin(admin, user, "second-pass'word-456")).toBe('updated');
      const old = asUser('first-password-123');
      await expect(old.connect()).rejects.toThrow(/password authentication failed/);
      const c2 = asUser("second-pass'word-456");
      await c2.connect();
      await c2.end();
      await expect(ensureWorkerLogin(admin, 'Robert"; DROP ROLE x; --', 'long-enough-pass')).rejects.toThrow(
        /WORKER_DB_USER must be a plain/,
      );
      await expect(ensureWorkerLogin(admin, user, 'short')).rejects.toThrow(/at least 12/);
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${user}`);
    }
  });

  it('a login outside the role can call none of the pipeline functions', async () => {
    const other = new pg.Client({ connectionString: urlFor(outsider) });
    await other.connect();
    try {
      const err = await other.query(`SELECT * FROM pinreset_counts('x')`).then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(err?.code).toBe('42501');
      const read = await other.query('SELECT 1 FROM ledger LIMIT 1').then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(read?.code).toBe('42501');
    } finally {
      await other.end();
    }
  });
});
