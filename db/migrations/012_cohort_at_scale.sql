-- Ten times the cohort (issue 12, item 6).
--
-- 1. The cohort freeze in bounded chunks. 007's pinreset_materialize_active_cohort is one INSERT
--    of every open account: at 8.2 million accounts it outlived prepareRun's 5-minute
--    start-to-close timeout, so every retry started (and rolled back) the same statement again.
--    pinreset_freeze_cohort_chunk freezes at most p_chunk accounts per call, each call its own
--    short transaction (the caller sets a statement timeout), and keeps its place in runs:
--      freeze_upto     the highest account id when the freeze began: accounts created later
--                      are not in the cohort, however long the freeze takes;
--      frozen_through  the last account id frozen so far (a repeated attempt resumes there);
--      cohort_frozen_at set once the last chunk is done; planned is exact from then on.
--    The run's row is locked for the chunk: two attempts running at once (a retry beside a zombie)
--    take turns, each continuing where the other stopped, and ON CONFLICT DO NOTHING keeps a
--    repeated page harmless. planned grows by the rows actually inserted, so it stays exact.
--    A run frozen whole by 007's function (ledger rows, no frozen_through) is taken as frozen.
--
-- 2. The ledger's fillfactor. Every row is written three times or more after its insert (reset,
--    claim, record; delivery receipts after). Pages filled to 100% by the freeze leave no room for
--    a row's new version on its own page, so even the reset update (reset_state only, no indexed
--    column) cannot be a HOT update and must insert into the primary key too. 70 leaves room for
--    one new version of most rows on their page; vacuum prunes the old ones. Applies to pages
--    written from now on (new runs' ledgers), which is every ledger that matters.
--    The claim and record updates change indexed columns (ref, notify_state, provider_message_id
--    are in ledger_ref_idx, ledger_ambiguous_idx's predicate, ledger_delivery_open's predicate,
--    ledger_provider_message_id) and are never HOT; see BENCHMARKS.md for what was measured.

ALTER TABLE runs ADD COLUMN IF NOT EXISTS freeze_upto bigint;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS frozen_through bigint;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS cohort_frozen_at timestamptz;

CREATE OR REPLACE FUNCTION pinreset_freeze_cohort_chunk(p_run_id text, p_chunk integer)
RETURNS TABLE (done boolean, planned integer)
LANGUAGE plpgsql AS $$
DECLARE
  r runs%ROWTYPE;
  v_last bigint;
  v_n integer;
BEGIN
  IF p_chunk IS NULL OR p_chunk < 1 THEN
    RAISE EXCEPTION 'freeze chunk must be at least 1 account (got %)', p_chunk;
  END IF;
  SELECT * INTO r FROM runs WHERE id = p_run_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown run %', p_run_id;
  END IF;
  IF r.cohort_frozen_at IS NOT NULL THEN
    RETURN QUERY SELECT true, r.planned;
    RETURN;
  END IF;
  IF r.frozen_through IS NULL THEN
    IF EXISTS (SELECT 1 FROM ledger l WHERE l.run_id = p_run_id) THEN
      -- Frozen whole by the single-statement function (007) before this migration.
      UPDATE runs SET cohort_frozen_at = now(), planned = (SELECT count(*) FROM ledger l WHERE l.run_id = p_run_id)
      WHERE id = p_run_id RETURNING runs.planned INTO v_n;
      RETURN QUERY SELECT true, v_n;
      RETURN;
    END IF;
    r.freeze_upto := (SELECT coalesce(max(id), 0) FROM accounts);
    r.frozen_through := 0;
    r.planned := 0;
    UPDATE runs SET freeze_upto = r.freeze_upto, frozen_through = 0, planned = 0 WHERE id = p_run_id;
  END IF;

  -- Keyset page on the primary key; the status filter as in 007 (every account not closed or deleted).
  WITH page AS (
    SELECT a.id FROM accounts a
    WHERE a.id > r.frozen_through AND a.id <= r.freeze_upto AND a.status NOT IN ('closed', 'deleted')
    ORDER BY a.id
    LIMIT p_chunk
  ), ins AS (
    INSERT INTO ledger (run_id, account_id) SELECT p_run_id, id FROM page ORDER BY id
    ON CONFLICT DO NOTHING
    RETURNING 1
  )
  SELECT (SELECT max(id) FROM page), (SELECT count(*) FROM ins) INTO v_last, v_n;

  IF v_last IS NULL THEN
    UPDATE runs SET frozen_through = r.freeze_upto, cohort_frozen_at = now() WHERE id = p_run_id;
    RETURN QUERY SELECT true, r.planned;
    RETURN;
  END IF;
  UPDATE runs SET frozen_through = v_last, planned = r.planned + v_n WHERE id = p_run_id;
  RETURN QUERY SELECT false, r.planned + v_n;
END $$;

-- As every pinreset_* function since 011: the owner's rights, a pinned search_path, the worker may call it.
ALTER FUNCTION pinreset_freeze_cohort_chunk(text, integer) SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION pinreset_freeze_cohort_chunk(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pinreset_freeze_cohort_chunk(text, integer) TO pinreset_worker;

ALTER TABLE ledger SET (fillfactor = 70);
