-- Performance fixes found by the benchmarks (scripts/bench.ts, BENCHMARKS.md). Same results as
-- before, cheaper plans.
--
-- pinreset_reset_batch, normal (non-redrive) runs. 003/004 did the batch in one statement whose
-- CTEs (todo, invalidated) were joined to each other and to the ledger. Two plans came out, both
-- bad:
--   * with ledger statistics: a hash join against a sequential scan of the run's WHOLE ledger
--     (the ledger UPDATE had no bound on account_id): every 1,000-account batch read all N rows of
--     the run (EXPLAIN ANALYZE at 194k accounts: 321 ms per batch; ~1.4 s at 850k; quadratic);
--   * without them (the normal case: the cohort is inserted by pinreset_materialize_active_cohort
--     a moment before the first reset, and autovacuum has not analysed it yet), a nested loop that
--     rescans a CTE for every row: 2 x 1,000 x 1,000 comparisons, 0.45-0.9 s per batch (bench at
--     50k accounts: 1.5 s per batch with 4 in flight, 74 s of database time for 49 batches).
-- Now four statements, each driven by the batch's id range (or ids) on the primary keys, with no
-- join of a CTE or of the ledger to itself: lock the pending rows, invalidate the PINs
-- (remembering exactly which accounts), mark those 'reset', mark the rest 'skipped'. ~40-70 ms per batch with or without statistics, flat in N. Same outcome
-- per account as before: 'reset' exactly when this call invalidated the PIN; otherwise 'skipped'
-- with account_deleted / account_<status>; a batch called twice changes nothing the second time.
--
-- The redrive branch is 004's, verbatim, with its marker (see 004). It has the same CTE joins, so
-- the same risk of a quadratic plan without statistics; redrive cohorts are small.

CREATE OR REPLACE FUNCTION pinreset_reset_batch(p_run_id text, p_first bigint, p_last bigint, p_reason text)
RETURNS TABLE (reset integer, skipped integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_reset bigint[];
  v_done bigint;
  v_skipped bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM runs WHERE id = p_run_id AND cohort_kind = 'redrive') THEN
    -- 1. Lock the batch's pending rows: a second call on the same batch (a retry beside a zombie
    --    attempt) waits here, and then finds nothing pending.
    PERFORM 1 FROM ledger l
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last AND l.reset_state = 'pending'
    FOR UPDATE OF l;
    -- 2. Invalidate the PINs of the accounts still open; remember exactly which.
    WITH invalidated AS (
      UPDATE accounts a
      SET pin_hash = NULL, pin_salt = NULL, pin_status = 'reset_required',
          credential_version = a.credential_version + 1,
          pin_reset_at = now(), pin_reset_reason = p_reason, updated_at = now()
      FROM ledger l
      WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last AND l.reset_state = 'pending'
        AND a.id BETWEEN p_first AND p_last AND a.id = l.account_id AND a.status NOT IN ('closed', 'deleted')
      RETURNING a.id
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_reset FROM invalidated;
    -- 3. Move every locked row forward: 'reset' exactly when step 2 invalidated its PIN, then
    --    every row still pending 'skipped', with the reason. No joins: one table each, on the key.
    UPDATE ledger l
    SET reset_state = 'reset', reset_at = now()
    WHERE l.run_id = p_run_id AND l.account_id = ANY (v_reset) AND l.reset_state = 'pending';
    GET DIAGNOSTICS v_done = ROW_COUNT;
    UPDATE ledger l
    SET reset_state = 'skipped', reset_at = now(), notify_state = 'skipped',
        error_code = coalesce('account_' || (SELECT a.status FROM accounts a WHERE a.id = l.account_id), 'account_deleted')
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last AND l.reset_state = 'pending';
    GET DIAGNOSTICS v_skipped = ROW_COUNT;
    RETURN QUERY SELECT v_done::integer, v_skipped::integer;
    RETURN;
  END IF;

  -- pinreset:redrive-keeps-pins
  -- Redrive. `done_before`: some other run reset this account's PIN (probed per run on the
  -- ledger's primary key, so no scan of other runs' ledgers). reset_at of such a row is when the
  -- redrive confirmed it; the PIN's own reset time stays in accounts.pin_reset_at. Both UPDATEs
  -- are bounded by the batch's id range so they use the primary keys.
  RETURN QUERY
  WITH todo AS (
    SELECT l.account_id, a.id AS present, a.status,
           EXISTS (
             SELECT 1 FROM runs r JOIN ledger prev ON prev.run_id = r.id AND prev.account_id = l.account_id
             WHERE r.id <> p_run_id AND prev.reset_state = 'reset'
           ) AS done_before
    FROM ledger l
    LEFT JOIN accounts a ON a.id = l.account_id
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last AND l.reset_state = 'pending'
    FOR UPDATE OF l
  ),
  invalidated AS (
    UPDATE accounts a
    SET pin_hash = NULL, pin_salt = NULL, pin_status = 'reset_required',
        credential_version = a.credential_version + 1,
        pin_reset_at = now(), pin_reset_reason = p_reason, updated_at = now()
    FROM todo
    WHERE a.id BETWEEN p_first AND p_last
      AND a.id = todo.account_id AND todo.status NOT IN ('closed', 'deleted') AND NOT todo.done_before
    RETURNING a.id
  ),
  marked AS (
    UPDATE ledger l
    SET reset_state = CASE WHEN i.id IS NOT NULL OR (todo.done_before AND todo.present IS NOT NULL AND todo.status NOT IN ('closed', 'deleted'))
                           THEN 'reset' ELSE 'skipped' END,
        reset_at = now(),
        notify_state = CASE WHEN i.id IS NOT NULL OR (todo.done_before AND todo.present IS NOT NULL AND todo.status NOT IN ('closed', 'deleted'))
                            THEN l.notify_state ELSE 'skipped' END,
        error_code = CASE
          WHEN i.id IS NOT NULL OR (todo.done_before AND todo.present IS NOT NULL AND todo.status NOT IN ('closed', 'deleted')) THEN l.error_code
          WHEN todo.present IS NULL THEN 'account_deleted'
          ELSE 'account_' || todo.status
        END
    FROM todo LEFT JOIN invalidated i ON i.id = todo.account_id
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last
      AND l.account_id = todo.account_id
    RETURNING l.reset_state
  )
  SELECT count(*) FILTER (WHERE reset_state = 'reset')::integer, count(*) FILTER (WHERE reset_state = 'skipped')::integer
  FROM marked;
END $$;

-- pinreset_claim_notify_chunk: the UPDATE joined the claimed chunk (a CTE) to the ledger by
-- account id only. Without ledger statistics (the cohort was inserted moments before) the planner
-- took the run's WHOLE ledger as the outer side and rescanned the chunk for every row: 194k x 250
-- comparisons, 21 s for one 250-account claim at 194k accounts (EXPLAIN ANALYZE; ~90 s at 850k).
-- Bounding the UPDATE to the chunk's own ids (= ANY of the locked ids, on the primary key) keeps
-- it at one chunk whatever the plan: ~5-10 ms. Same rows, same results as 003.
CREATE OR REPLACE FUNCTION pinreset_claim_notify_chunk(p_run_id text, p_after bigint, p_last bigint, p_limit integer)
RETURNS TABLE (
  account_id bigint, was_sending boolean, attempt_started_at timestamptz, attempts integer, fell_back boolean,
  status text, phone text, phone_type text, sms_opt_out boolean, email text, email_opt_out boolean
)
LANGUAGE sql AS $$
  WITH chunk AS (
    SELECT l.account_id, l.notify_state = 'sending' AS was_sending, l.attempt_started_at AS prev_started
    FROM ledger l
    WHERE l.run_id = p_run_id AND l.account_id > p_after AND l.account_id <= p_last
      AND l.reset_state = 'reset' AND l.notify_state IN ('pending', 'sending')
    ORDER BY l.account_id
    LIMIT p_limit
    FOR UPDATE OF l
  ),
  claimed AS (
    UPDATE ledger l
    SET notify_state = 'sending',
        attempt_started_at = CASE WHEN chunk.was_sending THEN chunk.prev_started ELSE clock_timestamp() END,
        attempts = l.attempts + 1
    FROM chunk
    WHERE l.run_id = p_run_id AND l.account_id = ANY (ARRAY(SELECT c.account_id FROM chunk c))
      AND l.account_id = chunk.account_id
    RETURNING l.account_id, chunk.was_sending, l.attempt_started_at, l.attempts, l.fell_back
  )
  SELECT c.account_id, c.was_sending, c.attempt_started_at, c.attempts, c.fell_back,
         a.status, a.phone, a.phone_type, a.sms_opt_out, a.email, a.email_opt_out
  FROM claimed c LEFT JOIN accounts a ON a.id = c.account_id
  ORDER BY c.account_id
$$;
