-- Least privilege, tightened (issue 12). Until now every pinreset_* function ran with the caller's
-- rights, so the worker role needed direct SELECT on customers' contact columns and direct UPDATE
-- on the PIN columns of every account. Now:
--
--   * every pinreset_* function runs as its owner (SECURITY DEFINER) with a pinned search_path, so
--     a caller cannot put a table or operator of its own in front of the real ones;
--   * pinreset_worker has no privilege at all on `accounts`: the PIN columns change and the contact
--     data is read only through those functions, which touch only the accounts in a run's ledger
--     (the cohort the worker processes), never an arbitrary customer;
--   * nobody but the owner creates objects in schema public.
--
-- The worker keeps direct SELECT/INSERT/UPDATE on the pipeline's own tables (runs, ledger,
-- checkpoints): they hold opaque ids and states, no customer data, and some of its SQL runs on
-- them directly.
--
-- The functions are owned by whoever runs the migrations: that owner should be the schema owner
-- role, not a superuser (docs/security.md). A pinreset_* function added by a later migration must
-- repeat the ALTER FUNCTION ... SECURITY DEFINER SET search_path and the grants below for itself;
-- tests/roles.test.ts fails if one does not.

DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND p.proname LIKE 'pinreset\_%' AND p.prokind = 'f'
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = public, pg_temp', f);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO pinreset_worker', f);
  END LOOP;
END $$;

-- REVOKE ALL on the table also revokes the column grants of 005 (SELECT of the contact columns,
-- UPDATE of the PIN columns).
REVOKE ALL ON accounts FROM pinreset_worker;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
