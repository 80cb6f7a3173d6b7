-- Performance fixes found by the benchmarks (scripts/bench.ts, BENCHMARKS.md). Same results as
-- before, cheaper plans.
--
-- pinreset_reset_batch (normal runs): the ledger UPDATE joined the batch (a CTE) to the ledger by
-- account id only, so the planner hash-joined it against a sequential scan of the run's whole
-- ledger: every 1,000-account batch read all N ledger rows of the run (EXPLAIN ANALYZE at 194k
-- accounts: 321 ms per batch, of which 104 ms the scan and 146 ms planning; ~1.4 s per batch at
-- 850k, quadratic over a run). Bounding both UPDATEs by the batch's id range, as 004 already does
-- for redrive runs, lets them use the primary keys: 35 ms per batch at 194k, flat in N.
--
-- The function is otherwise 004's, verbatim: the redrive branch and its marker stay (see 004).

CREATE OR REPLACE FUNCTION pinreset_reset_batch(p_run_id text, p_first bigint, p_last bigint, p_reason text)
RETURNS TABLE (reset integer, skipped integer)
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM runs WHERE id = p_run_id AND cohort_kind = 'redrive') THEN
    RETURN QUERY
    WITH todo AS (
      SELECT l.account_id, a.id AS present, a.status
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
        AND a.id = todo.account_id AND todo.status NOT IN ('closed', 'deleted')
      RETURNING a.id
    ),
    marked AS (
      UPDATE ledger l
      SET reset_state = CASE WHEN i.id IS NOT NULL THEN 'reset' ELSE 'skipped' END,
          reset_at = now(),
          notify_state = CASE WHEN i.id IS NOT NULL THEN l.notify_state ELSE 'skipped' END,
          error_code = CASE
            WHEN i.id IS NOT NULL THEN l.error_code
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
