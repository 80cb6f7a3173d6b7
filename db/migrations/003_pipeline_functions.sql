-- The pipeline's SQL operations, one function each, called by small modules in db/sql/.
-- Every function moves ledger state only forward, so calling it twice changes nothing more.

ALTER TABLE runs ADD COLUMN IF NOT EXISTS reset_rate_per_second double precision NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS reset_tat timestamptz NOT NULL DEFAULT now();

-- Freeze the cohort of an 'all_active' run into the ledger. Idempotent: a second call inserts
-- nothing. Returns the cohort size.
CREATE OR REPLACE FUNCTION pinreset_materialize_active_cohort(p_run_id text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ledger WHERE run_id = p_run_id) THEN
    INSERT INTO ledger (run_id, account_id)
    SELECT p_run_id, id FROM accounts WHERE status = 'active' ORDER BY id
    ON CONFLICT DO NOTHING;
  END IF;
  SELECT count(*) INTO n FROM ledger WHERE run_id = p_run_id;
  UPDATE runs SET planned = n WHERE id = p_run_id;
  RETURN n;
END $$;

-- Keyset planning: the next up-to p_max batches of up to p_batch_size cohort accounts after
-- p_after. Each batch is an inclusive id range.
CREATE OR REPLACE FUNCTION pinreset_plan_batches(p_run_id text, p_after bigint, p_batch_size integer, p_max integer)
RETURNS TABLE (first_id bigint, last_id bigint, size integer)
LANGUAGE sql STABLE AS $$
  WITH ids AS (
    SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1) / p_batch_size AS b
    FROM (
      SELECT account_id FROM ledger
      WHERE run_id = p_run_id AND account_id > p_after
      ORDER BY account_id
      LIMIT p_batch_size::bigint * p_max
    ) page
  )
  SELECT min(account_id), max(account_id), count(*)::integer FROM ids GROUP BY b ORDER BY 1
$$;

-- Invalidate the PINs of one batch in one transaction (the caller's). Accounts this run already
-- handled are untouched; accounts closed or deleted since the cohort was frozen are skipped with
-- the reason. A suspended account's PIN is still exposed, so it is reset too.
CREATE OR REPLACE FUNCTION pinreset_reset_batch(p_run_id text, p_first bigint, p_last bigint, p_reason text)
RETURNS TABLE (reset integer, skipped integer)
LANGUAGE plpgsql AS $$
BEGIN
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
END $$;

-- Claim the next chunk of a batch for notification. Rows still 'sending' were claimed by an
-- attempt that died mid-flight: they come back flagged so the caller reconciles before resending.
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
    WHERE l.run_id = p_run_id AND l.account_id = chunk.account_id
    RETURNING l.account_id, chunk.was_sending, l.attempt_started_at, l.attempts, l.fell_back
  )
  SELECT c.account_id, c.was_sending, c.attempt_started_at, c.attempts, c.fell_back,
         a.status, a.phone, a.phone_type, a.sms_opt_out, a.email, a.email_opt_out
  FROM claimed c LEFT JOIN accounts a ON a.id = c.account_id
  ORDER BY c.account_id
$$;

-- Record the outcomes of a chunk in one statement. Only rows still 'sending' change. State
-- 'pending' releases a claimed row that was never attempted (the run is pausing itself).
CREATE OR REPLACE FUNCTION pinreset_record_outcomes(
  p_run_id text, p_account_ids bigint[], p_states text[], p_channels text[], p_fell_back boolean[],
  p_message_ids text[], p_error_codes text[]
) RETURNS integer
LANGUAGE sql AS $$
  WITH o AS (
    SELECT * FROM unnest(p_account_ids, p_states, p_channels, p_fell_back, p_message_ids, p_error_codes)
      AS o(account_id, state, channel, fell_back, message_id, error_code)
  ), done AS (
    UPDATE ledger l
    SET notify_state = o.state, channel = o.channel, fell_back = o.fell_back,
        attempt_started_at = CASE WHEN o.state = 'pending' THEN NULL ELSE l.attempt_started_at END,
        provider_message_id = o.message_id, error_code = o.error_code,
        notified_at = CASE WHEN o.state = 'sent' THEN clock_timestamp() ELSE l.notified_at END
    FROM o
    WHERE l.run_id = p_run_id AND l.account_id = o.account_id AND l.notify_state = 'sending'
    RETURNING 1
  )
  SELECT count(*)::integer FROM done
$$;

-- Outcome counts of a run, or of one batch when a range is given.
CREATE OR REPLACE FUNCTION pinreset_counts(p_run_id text, p_first bigint DEFAULT NULL, p_last bigint DEFAULT NULL)
RETURNS TABLE (
  planned integer, reset integer, skipped integer, sent_sms integer, sent_email integer, fell_back integer,
  unreachable integer, failed integer, notify_skipped integer, pending integer
)
LANGUAGE sql STABLE AS $$
  SELECT count(*)::integer,
         count(*) FILTER (WHERE reset_state = 'reset')::integer,
         count(*) FILTER (WHERE reset_state = 'skipped')::integer,
         count(*) FILTER (WHERE notify_state = 'sent' AND channel = 'sms')::integer,
         count(*) FILTER (WHERE notify_state = 'sent' AND channel = 'email')::integer,
         count(*) FILTER (WHERE notify_state = 'sent' AND fell_back)::integer,
         count(*) FILTER (WHERE notify_state = 'unreachable')::integer,
         count(*) FILTER (WHERE notify_state = 'failed')::integer,
         count(*) FILTER (WHERE notify_state = 'skipped' AND reset_state = 'reset')::integer,
         count(*) FILTER (WHERE notify_state IN ('pending', 'sending') AND reset_state <> 'skipped')::integer
  FROM ledger
  WHERE run_id = p_run_id
    AND (p_first IS NULL OR account_id >= p_first)
    AND (p_last IS NULL OR account_id <= p_last)
$$;

-- Global send-rate limiter shared by every worker (GCRA). Reserves p_n message slots and returns
-- how long the caller must wait before using them, and the rate in force (0 = unlimited).
-- The database clock is the only clock, so workers with skewed clocks still agree.
CREATE OR REPLACE FUNCTION pinreset_acquire_send_slots(p_run_id text, p_n integer)
RETURNS TABLE (wait_ms double precision, rate double precision)
LANGUAGE sql AS $$
  UPDATE runs
  SET rate_tat = CASE WHEN rate_per_second > 0
                      THEN greatest(rate_tat, clock_timestamp()) + make_interval(secs => p_n / rate_per_second)
                      ELSE rate_tat END
  WHERE id = p_run_id
  RETURNING
    CASE WHEN rate_per_second > 0
         THEN greatest(0, extract(epoch FROM (rate_tat - make_interval(secs => p_n / rate_per_second) - clock_timestamp())) * 1000)
         ELSE 0 END,
    rate_per_second
$$;

-- Same limiter for PIN resets: a ceiling that protects a production database.
CREATE OR REPLACE FUNCTION pinreset_acquire_reset_slots(p_run_id text, p_n integer)
RETURNS double precision
LANGUAGE sql AS $$
  UPDATE runs
  SET reset_tat = CASE WHEN reset_rate_per_second > 0
                       THEN greatest(reset_tat, clock_timestamp()) + make_interval(secs => p_n / reset_rate_per_second)
                       ELSE reset_tat END
  WHERE id = p_run_id
  RETURNING CASE WHEN reset_rate_per_second > 0
                 THEN greatest(0, extract(epoch FROM (reset_tat - make_interval(secs => p_n / reset_rate_per_second) - clock_timestamp())) * 1000)
                 ELSE 0 END
$$;

-- Provider throttling (429) pushes every worker's next slot back.
CREATE OR REPLACE FUNCTION pinreset_penalize_send_rate(p_run_id text, p_ms integer) RETURNS void
LANGUAGE sql AS $$
  UPDATE runs SET rate_tat = greatest(rate_tat, clock_timestamp()) + make_interval(secs => p_ms / 1000.0)
  WHERE id = p_run_id AND rate_per_second > 0
$$;
