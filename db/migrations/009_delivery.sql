-- Delivery truth (issue 11): status callbacks, delivery state per account, one send budget per
-- sender and channel shared by every run.

-- Every status callback the receiver accepted, one row per message SID, moved only up the rank
-- (domain/delivery.ts): callbacks come out of order and twice, so the receiver's upsert keeps the
-- highest-ranked status and, among final states, the first. run_id and ref come from the callback
-- URL (statusCallbackUrl): they identify the ledger row even when the send's response was lost.
-- The receiver writes only here (one upsert on the primary key, no ledger row locks); the
-- follow-up activity folds receipts into the ledger.
CREATE TABLE IF NOT EXISTS sms_receipts (
  message_sid   text PRIMARY KEY,
  run_id        text,
  ref           text,
  status        text NOT NULL,
  rank          smallint NOT NULL,
  error_code    text,
  first_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  final_at      timestamptz,
  callbacks     integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS sms_receipts_run_ref ON sms_receipts (run_id, ref);
CREATE INDEX IF NOT EXISTS sms_receipts_run_updated ON sms_receipts (run_id, updated_at);

-- Email bounces reported by the relay's signed webhook (SendGrid Event Webhook), by Message-ID.
CREATE TABLE IF NOT EXISTS email_bounces (
  message_id    text PRIMARY KEY,
  event         text NOT NULL,          -- bounce, dropped, blocked
  reason        text,                   -- the relay's status code or type, never the address
  received_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Upsert of a group of callbacks. Returns the SIDs whose receipt changed (a repeat changes nothing).
CREATE OR REPLACE FUNCTION pinreset_record_status_callbacks(
  p_sids text[], p_run_ids text[], p_refs text[], p_statuses text[], p_ranks smallint[], p_codes text[]
) RETURNS SETOF text
LANGUAGE sql AS $$
  WITH c AS (
    -- Several callbacks of one SID in one call: keep the highest rank (the first final among equals).
    SELECT DISTINCT ON (sid) * FROM unnest(p_sids, p_run_ids, p_refs, p_statuses, p_ranks, p_codes) WITH ORDINALITY
      AS c(sid, run_id, ref, status, rank, code, ord)
    ORDER BY sid, rank DESC, ord
  ), up AS (
    INSERT INTO sms_receipts AS r (message_sid, run_id, ref, status, rank, error_code, final_at)
    SELECT sid, run_id, ref, status, rank, code, CASE WHEN rank >= 4 THEN clock_timestamp() END FROM c
    ON CONFLICT (message_sid) DO UPDATE
      SET status = excluded.status, rank = excluded.rank, error_code = coalesce(excluded.error_code, r.error_code),
          run_id = coalesce(r.run_id, excluded.run_id), ref = coalesce(r.ref, excluded.ref),
          updated_at = clock_timestamp(), final_at = coalesce(r.final_at, excluded.final_at), callbacks = r.callbacks + 1
      WHERE excluded.rank > r.rank AND r.rank < 4
    RETURNING message_sid
  )
  SELECT message_sid FROM up
$$;

-- Delivery state per ledger row. delivery_state: accepted < sent < delivered | undelivered |
-- failed (final), or unknown when no final receipt came by the run's deadline. delivery_action
-- records what the run did about a bad outcome (retry_sms, sms_retried, fallback_email,
-- unreachable, none).
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS delivery_state text
  CHECK (delivery_state IN ('accepted', 'sent', 'delivered', 'undelivered', 'failed', 'unknown'));
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS delivery_code text;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS delivery_updated_at timestamptz;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS delivery_final_at timestamptz;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS delivery_action text;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS delivery_retry_at timestamptz;
-- The SMS that a delivery follow-up replaced (by a retry or an email fallback), for the audit.
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS first_message_id text;
-- Receipts are matched to rows by SID: without this, every fold would scan the run's ledger.
CREATE INDEX IF NOT EXISTS ledger_provider_message_id ON ledger (provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ledger_delivery_open ON ledger (run_id, account_id)
  WHERE channel = 'sms' AND notify_state = 'sent' AND (delivery_state IS NULL OR delivery_state IN ('accepted', 'sent'));

-- One send budget per sender and channel ('sms:+15550000000', 'sms:MG...', 'email:relay:587'),
-- shared by every run and worker (GCRA). A run's own rate_per_second is its share: a send takes
-- a slot from both. rate = 'Infinity' is unlimited; penalty (0..0.5) is the share of the rate
-- withheld after provider throttling, halving every 10 s.
CREATE TABLE IF NOT EXISTS send_budgets (
  sender        text PRIMARY KEY,
  rate          double precision NOT NULL CHECK (rate > 0),
  tat           timestamptz NOT NULL DEFAULT clock_timestamp(),
  penalty       double precision NOT NULL DEFAULT 0 CHECK (penalty >= 0 AND penalty <= 0.5),
  penalized_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- 0 meant "unlimited" until now. It is the natural gesture to stop, so unlimited is now an
-- explicit value (Infinity, shown as 'unlimited'), and 0 is refused by the validators.
UPDATE runs SET rate_per_second = 'Infinity' WHERE rate_per_second = 0;
-- Set when an operator cancels: sends waiting for a slot stop at once instead of finishing their
-- batch at the run's rate (a batch at 0.2 msg/s would keep the run CANCELLING for minutes).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS stopping boolean NOT NULL DEFAULT false;
ALTER TABLE runs ALTER COLUMN rate_per_second SET DEFAULT 'Infinity';

CREATE OR REPLACE FUNCTION pinreset_budget_penalty(p_penalty double precision, p_at timestamptz) RETURNS double precision
LANGUAGE sql VOLATILE AS $$
  SELECT p_penalty * power(0.5, greatest(0, extract(epoch FROM (clock_timestamp() - p_at))) / 10.0)
$$;

-- Reserve p_n slots for a run on a sender, from both the run's own rate and the sender's budget,
-- but only when they are usable within p_max_wait_ms: otherwise reserve nothing and say how long
-- to wait, so a waiting worker sleeps briefly, re-reads the rates and holds nothing meanwhile.
-- A run with status other than running gets nothing (granted false, wait p_max_wait_ms).
CREATE OR REPLACE FUNCTION pinreset_acquire_send_budget(
  p_run_id text, p_sender text, p_n integer, p_default_rate double precision, p_max_wait_ms double precision
) RETURNS TABLE (granted boolean, wait_ms double precision, run_rate double precision, sender_rate double precision)
LANGUAGE plpgsql AS $$
DECLARE
  v_now timestamptz := clock_timestamp();
  v_run runs%ROWTYPE;
  v_b send_budgets%ROWTYPE;
  v_sender_rate double precision;
  v_start timestamptz;
  v_wait double precision;
BEGIN
  INSERT INTO send_budgets (sender, rate) VALUES (p_sender, p_default_rate) ON CONFLICT DO NOTHING;
  SELECT * INTO v_run FROM runs WHERE id = p_run_id FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'unknown run %', p_run_id; END IF;
  IF v_run.stopping THEN
    -- Cancelled: no more slots; wait_ms -1 tells the gate to stop the send.
    RETURN QUERY SELECT false, -1::double precision, v_run.rate_per_second, 0::double precision;
    RETURN;
  END IF;
  SELECT * INTO v_b FROM send_budgets WHERE sender = p_sender FOR UPDATE;
  v_sender_rate := v_b.rate * (1 - pinreset_budget_penalty(v_b.penalty, v_b.penalized_at));
  IF v_run.rate_per_second <= 0 THEN
    -- A stopped run (rate 0 from an old row): wait, holding nothing.
    RETURN QUERY SELECT false, p_max_wait_ms, v_run.rate_per_second, v_sender_rate;
    RETURN;
  END IF;
  v_start := greatest(v_now, CASE WHEN v_run.rate_per_second = 'Infinity' THEN v_now ELSE v_run.rate_tat END,
                      CASE WHEN v_sender_rate = 'Infinity' THEN v_now ELSE v_b.tat END);
  v_wait := extract(epoch FROM (v_start - v_now)) * 1000;
  IF v_wait > p_max_wait_ms THEN
    RETURN QUERY SELECT false, v_wait, v_run.rate_per_second, v_sender_rate;
    RETURN;
  END IF;
  IF v_run.rate_per_second <> 'Infinity' THEN
    UPDATE runs SET rate_tat = v_start + make_interval(secs => p_n / v_run.rate_per_second) WHERE id = p_run_id;
  END IF;
  IF v_sender_rate <> 'Infinity' THEN
    UPDATE send_budgets SET tat = v_start + make_interval(secs => p_n / v_sender_rate) WHERE sender = p_sender;
  END IF;
  RETURN QUERY SELECT true, v_wait, v_run.rate_per_second, v_sender_rate;
END $$;

-- Provider throttling (429): withhold a further 10% of the sender's rate, at most half (what the old per-run push-back of 250 ms per second per worker cost at worst with two workers), decaying.
CREATE OR REPLACE FUNCTION pinreset_penalize_sender(p_sender text) RETURNS double precision
LANGUAGE sql AS $$
  UPDATE send_budgets
  SET penalty = least(0.5, pinreset_budget_penalty(penalty, penalized_at) + 0.1), penalized_at = clock_timestamp()
  WHERE sender = p_sender
  RETURNING penalty
$$;

-- set-rate for a sender: restart the schedule from now so a raised rate applies at once.
CREATE OR REPLACE FUNCTION pinreset_set_sender_rate(p_sender text, p_rate double precision) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO send_budgets (sender, rate) VALUES (p_sender, p_rate)
  ON CONFLICT (sender) DO UPDATE SET rate = excluded.rate, tat = least(send_budgets.tat, clock_timestamp()), updated_at = clock_timestamp()
$$;

-- Delivery counts of a run: by state and, for undelivered/failed, by code (a jsonb object).
CREATE OR REPLACE FUNCTION pinreset_delivery_counts(p_run_id text, p_first bigint DEFAULT NULL, p_last bigint DEFAULT NULL)
RETURNS TABLE (accepted integer, sent integer, delivered integer, undelivered integer, failed integer, unknown integer,
               by_code jsonb, fell_back_after_receipt integer, retried integer)
LANGUAGE sql STABLE AS $$
  WITH rows AS (
    SELECT delivery_state, delivery_code, delivery_action, first_message_id FROM ledger
    WHERE run_id = p_run_id AND delivery_state IS NOT NULL
      AND (p_first IS NULL OR account_id >= p_first) AND (p_last IS NULL OR account_id <= p_last)
  )
  SELECT count(*) FILTER (WHERE delivery_state = 'accepted')::integer,
         count(*) FILTER (WHERE delivery_state = 'sent')::integer,
         count(*) FILTER (WHERE delivery_state = 'delivered')::integer,
         count(*) FILTER (WHERE delivery_state = 'undelivered')::integer,
         count(*) FILTER (WHERE delivery_state = 'failed')::integer,
         count(*) FILTER (WHERE delivery_state = 'unknown')::integer,
         coalesce((SELECT jsonb_object_agg(code, n) FROM (
           SELECT delivery_code AS code, count(*) AS n FROM rows
           WHERE delivery_state IN ('undelivered', 'failed') AND delivery_code IS NOT NULL GROUP BY delivery_code) x), '{}'::jsonb),
         count(*) FILTER (WHERE delivery_action = 'fallback_email')::integer,
         count(*) FILTER (WHERE delivery_action IN ('sms_retried', 'retry_sms_sending'))::integer
  FROM rows
$$;

-- The worker role (005): receipts are read by the follow-up; budgets are the worker's to use.
-- The callback receiver connects with its own role, which only writes receipts and bounces.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pinreset_callbacks') THEN
    CREATE ROLE pinreset_callbacks NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END $$;
GRANT USAGE ON SCHEMA public TO pinreset_callbacks;
GRANT SELECT, INSERT, UPDATE ON sms_receipts, email_bounces TO pinreset_callbacks;
GRANT SELECT ON sms_receipts, email_bounces TO pinreset_worker;
GRANT SELECT, INSERT, UPDATE ON send_budgets TO pinreset_worker;
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
GRANT EXECUTE ON FUNCTION pinreset_record_status_callbacks(text[], text[], text[], text[], smallint[], text[]) TO pinreset_callbacks;

-- ---- the delivery follow-up (activities/follow-up-deliveries.ts) ---------------------------------

ALTER TABLE runs ADD COLUMN IF NOT EXISTS delivery_watermark timestamptz;

CREATE OR REPLACE FUNCTION pinreset_delivery_rank(p_state text) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_state WHEN 'accepted' THEN 1 WHEN 'sent' THEN 3 WHEN 'unknown' THEN 3
                      WHEN 'delivered' THEN 4 WHEN 'undelivered' THEN 4 WHEN 'failed' THEN 4 ELSE 0 END::smallint
$$;

CREATE OR REPLACE FUNCTION pinreset_delivery_state_of(p_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_status IN ('accepted', 'scheduled', 'queued', 'sending') THEN 'accepted'
              WHEN p_status = 'sent' THEN 'sent'
              WHEN p_status IN ('delivered', 'read') THEN 'delivered'
              WHEN p_status = 'undelivered' THEN 'undelivered'
              ELSE 'failed' END
$$;

-- Fold the run's receipts that changed since the last fold into its ledger rows, by message SID
-- (the SMS the row holds now). Moves only up the rank; a late final receipt also replaces
-- 'unknown'. Also: email rows accepted by the relay become 'sent', and relay bounces 'undelivered'.
-- The watermark overlaps by 10 s, so a receipt committed late is not missed; refolding is a no-op.
CREATE OR REPLACE FUNCTION pinreset_fold_receipts(p_run_id text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_since timestamptz;
  v_now timestamptz := clock_timestamp();
  v_n integer;
  v_m integer;
BEGIN
  SELECT coalesce(delivery_watermark, '-infinity') INTO v_since FROM runs WHERE id = p_run_id FOR UPDATE;
  UPDATE ledger l
  SET delivery_state = pinreset_delivery_state_of(r.status), delivery_code = r.error_code,
      delivery_updated_at = r.updated_at, delivery_final_at = r.final_at
  FROM sms_receipts r
  WHERE r.run_id = p_run_id AND r.updated_at >= v_since - interval '10 seconds'
    AND l.provider_message_id = r.message_sid AND l.run_id = p_run_id AND l.channel = 'sms'
    AND pinreset_delivery_rank(l.delivery_state) < r.rank;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  UPDATE ledger l SET delivery_state = 'sent', delivery_updated_at = l.notified_at
  WHERE l.run_id = p_run_id AND l.channel = 'email' AND l.notify_state = 'sent' AND l.delivery_state IS NULL;
  UPDATE ledger l
  SET delivery_state = 'undelivered', delivery_code = 'email_' || b.event || coalesce(':' || b.reason, ''),
      delivery_updated_at = b.received_at, delivery_final_at = b.received_at, delivery_action = 'email_bounced'
  FROM email_bounces b
  WHERE b.received_at >= v_since - interval '10 seconds' AND l.run_id = p_run_id
    AND l.provider_message_id = b.message_id AND l.channel = 'email' AND l.delivery_action IS DISTINCT FROM 'email_bounced';
  GET DIAGNOSTICS v_m = ROW_COUNT;
  UPDATE runs SET delivery_watermark = v_now WHERE id = p_run_id;
  RETURN v_n + v_m;
END $$;

-- SMS with no final receipt p_deadline_s after they were sent: 'unknown', not 'sent'.
CREATE OR REPLACE FUNCTION pinreset_mark_unknown_deliveries(p_run_id text, p_deadline_s double precision) RETURNS integer
LANGUAGE sql AS $$
  WITH u AS (
    UPDATE ledger l SET delivery_state = 'unknown', delivery_updated_at = clock_timestamp()
    WHERE l.run_id = p_run_id AND l.channel = 'sms' AND l.notify_state = 'sent'
      AND (l.delivery_state IS NULL OR l.delivery_state IN ('accepted', 'sent'))
      AND coalesce(l.delivery_updated_at, l.notified_at) < clock_timestamp() - make_interval(secs => p_deadline_s)
    RETURNING 1
  )
  SELECT count(*)::integer FROM u
$$;

-- Receipt figures for the pause rules, over final receipts since p_from: the last p_window
-- finals and how many were filtered; 30001s since the previous fold.
CREATE OR REPLACE FUNCTION pinreset_recent_receipts(p_run_id text, p_from timestamptz, p_window integer)
RETURNS TABLE (finals integer, filtered integer, queue_overflow integer)
LANGUAGE sql STABLE AS $$
  WITH recent AS (
    SELECT error_code FROM sms_receipts
    WHERE run_id = p_run_id AND rank >= 4 AND final_at >= p_from
    ORDER BY final_at DESC LIMIT p_window
  )
  SELECT count(*)::integer, count(*) FILTER (WHERE error_code IN ('30007', '30034'))::integer,
         (SELECT count(*)::integer FROM sms_receipts WHERE run_id = p_run_id AND rank >= 4 AND error_code = '30001' AND final_at >= p_from)
  FROM recent
$$;

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
GRANT EXECUTE ON FUNCTION pinreset_record_status_callbacks(text[], text[], text[], text[], smallint[], text[]) TO pinreset_callbacks;
GRANT UPDATE (delivery_watermark, stopping) ON runs TO pinreset_worker;
