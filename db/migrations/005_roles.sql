-- Least privilege for workers. `pinreset_worker` is a NOLOGIN group role holding exactly what the
-- worker's activities need; a deployment creates the login user and puts it in the role:
--
--   CREATE ROLE pinreset_worker_app LOGIN PASSWORD '...' IN ROLE pinreset_worker;
--
-- Migrations, seeding, imports and run creation (the CLI) run as the schema owner or an operator
-- role, never as the worker. The worker gets no DELETE and no TRUNCATE anywhere, no DDL (it owns
-- nothing and has no CREATE on the schema), cannot read PIN verifiers (pin_hash, pin_salt,
-- pin_algo), names or account numbers, and can change on `accounts` only the PIN/credential columns.
--
-- Every pinreset_* function is SECURITY INVOKER (PostgreSQL's default; checked by
-- tests/roles.test.ts): it runs with the caller's rights, so the table grants below are the whole
-- story. A later migration that adds a pinreset_* function or a column the worker touches must
-- grant it here-style in that migration.

-- Roles are cluster-wide: the role may exist already (another database on the same server, or a
-- concurrent migration of a sibling database).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pinreset_worker') THEN
    CREATE ROLE pinreset_worker NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END $$;

GRANT USAGE ON SCHEMA public TO pinreset_worker;
-- Start from nothing on the pipeline's tables, whatever earlier grants there were.
REVOKE ALL ON accounts, runs, ledger, checkpoints FROM pinreset_worker;

-- accounts: the contact data the notification needs, the status, and the credential columns a
-- reset writes. credential_version is read too: the reset raises it by one (version + 1).
GRANT SELECT (id, status, phone, phone_type, email, sms_opt_out, email_opt_out, credential_version)
  ON accounts TO pinreset_worker;
GRANT UPDATE (pin_hash, pin_salt, pin_status, credential_version, pin_reset_at, pin_reset_reason, updated_at)
  ON accounts TO pinreset_worker;

-- runs: read a run (no customer data in it); change only its state, counters and rate limiters.
-- Creating a run (id, reason, operator, cohort, params) is an operator's act, not the worker's.
GRANT SELECT ON runs TO pinreset_worker;
GRANT UPDATE (status, status_reason, started_at, finished_at, planned, resets_done_at,
              rate_per_second, rate_tat, reset_tat)
  ON runs TO pinreset_worker;

-- ledger: the worker freezes the all_active cohort (INSERT) and moves each row's state forward.
GRANT SELECT, INSERT, UPDATE ON ledger TO pinreset_worker;

-- checkpoints: append-only progress records.
GRANT SELECT, INSERT ON checkpoints TO pinreset_worker;

-- The pipeline's functions: callable by the worker (and the owner), not by every database user.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND p.proname LIKE 'pinreset\_%'
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO pinreset_worker', f);
  END LOOP;
END $$;
