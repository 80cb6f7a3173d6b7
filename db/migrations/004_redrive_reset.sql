-- Redrive runs (cohort_kind = 'redrive', `pinreset redrive`) notify again the accounts whose
-- notification failed in an earlier run. Their PINs were invalidated by that run, and the customer
-- may have set a new PIN since: a redrive must not invalidate it again (credential_version + 1,
-- pin_status back to reset_required). So for a redrive run, pinreset_reset_batch moves a cohort
-- account to reset_state 'reset' WITHOUT touching `accounts` when an earlier run already reset
-- that account's PIN; notification then proceeds as in any run.
--
-- Safety net: a redrive cohort account that no other run ever reset (only possible when a
-- 'redrive' run is created by hand with arbitrary ids) is reset normally, so a customer is never
-- told "your PIN was reset" about a PIN that is still the exposed one. Closed, deleted and unknown
-- accounts are skipped with the reason, as before. Runs of every other kind behave exactly as in
-- 003 (the same statement, unchanged).
--
-- A later migration that redefines pinreset_reset_batch MUST keep the redrive branch and its
-- marker comment: `pinreset redrive` checks the installed function for the marker and refuses to
-- start otherwise (db/sql/redrive-reset-installed.ts); tests/cli.test.ts checks the behaviour.

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
      WHERE a.id = todo.account_id AND todo.status NOT IN ('closed', 'deleted')
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
      WHERE l.run_id = p_run_id AND l.account_id = todo.account_id
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
