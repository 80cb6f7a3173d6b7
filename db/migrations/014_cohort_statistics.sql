-- Fresh planner statistics for the ledger once a run's cohort is frozen (issue 11).
--
-- The freeze inserts every row of the run at once (850,000, or 8.5 million): until autovacuum
-- gets round to analyzing the ledger, the planner plans the run's statements from statistics of
-- a ledger without them. Seen in `npm run bench` at 850,000 accounts: for the first 60-90 s of
-- notifying, every outcome write (pinreset_record_leased, a join of a few hundred claimed rows by
-- primary key) took ~2 s instead of ~1 ms and the run sent 12-35 messages/s instead of ~2,000,
-- until autovacuum's ANALYZE of the ledger came and the rate jumped. The run's first step now
-- analyzes the ledger itself when its cohort is complete (a sample of 30,000 rows: about a second).
-- A lock wait (another ANALYZE or a VACUUM that does not yield) gives up after 10 s: the run goes
-- on with the statistics it has rather than wait.
CREATE OR REPLACE FUNCTION pinreset_analyze_ledger() RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM set_config('lock_timeout', '10s', true);
  ANALYZE ledger;
  RETURN true;
EXCEPTION WHEN lock_not_available THEN
  RETURN false;
END $$;

REVOKE EXECUTE ON FUNCTION pinreset_analyze_ledger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pinreset_analyze_ledger() TO pinreset_worker;
