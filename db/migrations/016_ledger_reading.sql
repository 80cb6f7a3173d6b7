-- One scan of a run's ledger per live reading (issues 11 and 14).
--
-- A checkpoint reading (every 5 s while batches are in flight, or 3x its own duration) read the
-- run's rows four times: pinreset_counts, the in-flight/rate/activity figures, the top error codes
-- and pinreset_delivery_counts. Each is a full pass over the run's rows (~0.45 s at 200,000 on the
-- loaded bench box), so at 850,000 the readings were a large share of PostgreSQL's time in
-- `npm run bench`. pinreset_ledger_reading computes all of them in one pass; the codes of the few
-- rows with an error are gathered into arrays in that pass and ranked afterwards.
--
-- It is also the one definition of the counts: pinreset_counts and pinreset_delivery_counts now
-- read their columns from it, so the figures a batch, a checkpoint and `status` show cannot drift.

CREATE OR REPLACE FUNCTION pinreset_ledger_reading(
  p_run_id text, p_first bigint DEFAULT NULL, p_last bigint DEFAULT NULL,
  p_window_s double precision DEFAULT 60, p_top integer DEFAULT 5
) RETURNS TABLE(
  planned integer, reset integer, skipped integer, sent_sms integer, sent_email integer, fell_back integer,
  unreachable integer, failed integer, notify_skipped integer, pending integer, ambiguous integer,
  in_flight integer, sent_in_window integer, first_sent_ms double precision, last_activity_ms double precision,
  read_ms double precision, top_errors jsonb,
  d_accepted integer, d_sent integer, d_delivered integer, d_undelivered integer, d_failed integer, d_unknown integer,
  d_by_code jsonb, d_fell_back_after_receipt integer, d_retried integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH t AS (SELECT clock_timestamp() AS now),
  a AS (
    SELECT count(l.run_id)::integer AS planned,
           count(*) FILTER (WHERE l.reset_state = 'reset')::integer AS reset,
           count(*) FILTER (WHERE l.reset_state = 'skipped')::integer AS skipped,
           count(*) FILTER (WHERE l.notify_state = 'sent' AND l.channel = 'sms')::integer AS sent_sms,
           count(*) FILTER (WHERE l.notify_state = 'sent' AND l.channel = 'email')::integer AS sent_email,
           count(*) FILTER (WHERE l.notify_state = 'sent' AND l.fell_back)::integer AS fell_back,
           count(*) FILTER (WHERE l.notify_state = 'unreachable')::integer AS unreachable,
           count(*) FILTER (WHERE l.notify_state = 'failed')::integer AS failed,
           count(*) FILTER (WHERE l.notify_state = 'skipped' AND l.reset_state = 'reset')::integer AS notify_skipped,
           count(*) FILTER (WHERE l.notify_state IN ('pending', 'sending') AND l.reset_state <> 'skipped')::integer AS pending,
           count(*) FILTER (WHERE l.notify_state = 'ambiguous')::integer AS ambiguous,
           count(*) FILTER (WHERE l.notify_state = 'sending')::integer AS in_flight,
           count(*) FILTER (WHERE l.notified_at > t.now - make_interval(secs => p_window_s))::integer AS sent_in_window,
           -- sending began with the first claim (or, for older rows, the first send)
           extract(epoch FROM least(min(l.notified_at), min(l.attempt_started_at))) * 1000 AS first_sent_ms,
           extract(epoch FROM greatest(max(l.notified_at), max(l.attempt_started_at))) * 1000 AS last_activity_ms,
           extract(epoch FROM t.now) * 1000 AS read_ms,
           -- outcome and code of settled rows with an error (a few percent of the run), ranked below
           array_agg(l.notify_state || ' ' || l.error_code)
             FILTER (WHERE l.error_code IS NOT NULL AND l.notify_state <> 'sending') AS errors,
           count(*) FILTER (WHERE l.delivery_state = 'accepted')::integer AS d_accepted,
           count(*) FILTER (WHERE l.delivery_state = 'sent')::integer AS d_sent,
           count(*) FILTER (WHERE l.delivery_state = 'delivered')::integer AS d_delivered,
           count(*) FILTER (WHERE l.delivery_state = 'undelivered')::integer AS d_undelivered,
           count(*) FILTER (WHERE l.delivery_state = 'failed')::integer AS d_failed,
           count(*) FILTER (WHERE l.delivery_state = 'unknown')::integer AS d_unknown,
           array_agg(l.delivery_code)
             FILTER (WHERE l.delivery_state IN ('undelivered', 'failed') AND l.delivery_code IS NOT NULL) AS bad_codes,
           count(*) FILTER (WHERE l.delivery_state IS NOT NULL AND l.delivery_action = 'fallback_email')::integer AS d_fell_back_after_receipt,
           count(*) FILTER (WHERE l.delivery_state IS NOT NULL AND l.delivery_action IN ('sms_retried', 'retry_sms_sending'))::integer AS d_retried
    FROM t LEFT JOIN ledger l ON l.run_id = p_run_id
      AND (p_first IS NULL OR l.account_id >= p_first) AND (p_last IS NULL OR l.account_id <= p_last)
    GROUP BY t.now
  )
  SELECT a.planned, a.reset, a.skipped, a.sent_sms, a.sent_email, a.fell_back, a.unreachable, a.failed,
         a.notify_skipped, a.pending, a.ambiguous, a.in_flight, a.sent_in_window, a.first_sent_ms,
         a.last_activity_ms, a.read_ms,
         coalesce((SELECT jsonb_agg(jsonb_build_object('outcome', e.outcome, 'code', e.code, 'count', e.n)
                                    ORDER BY e.n DESC, e.code)
                   FROM (SELECT split_part(x, ' ', 1) AS outcome, substr(x, strpos(x, ' ') + 1) AS code, count(*)::integer AS n
                         FROM unnest(a.errors) x GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT p_top) e), '[]'::jsonb),
         a.d_accepted, a.d_sent, a.d_delivered, a.d_undelivered, a.d_failed, a.d_unknown,
         coalesce((SELECT jsonb_object_agg(c.code, c.n)
                   FROM (SELECT x AS code, count(*) AS n FROM unnest(a.bad_codes) x GROUP BY 1) c), '{}'::jsonb),
         a.d_fell_back_after_receipt, a.d_retried
  FROM a
$$;

-- The two older readers keep their signatures (the CLI, batches and tests call them) and read
-- their columns from the one definition above.
CREATE OR REPLACE FUNCTION pinreset_counts(p_run_id text, p_first bigint DEFAULT NULL, p_last bigint DEFAULT NULL)
RETURNS TABLE(planned integer, reset integer, skipped integer, sent_sms integer, sent_email integer, fell_back integer,
              unreachable integer, failed integer, notify_skipped integer, pending integer, ambiguous integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT r.planned, r.reset, r.skipped, r.sent_sms, r.sent_email, r.fell_back, r.unreachable, r.failed,
         r.notify_skipped, r.pending, r.ambiguous
  FROM pinreset_ledger_reading(p_run_id, p_first, p_last) r
$$;

CREATE OR REPLACE FUNCTION pinreset_delivery_counts(p_run_id text, p_first bigint DEFAULT NULL, p_last bigint DEFAULT NULL)
RETURNS TABLE(accepted integer, sent integer, delivered integer, undelivered integer, failed integer, unknown integer,
              by_code jsonb, fell_back_after_receipt integer, retried integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT r.d_accepted, r.d_sent, r.d_delivered, r.d_undelivered, r.d_failed, r.d_unknown, r.d_by_code,
         r.d_fell_back_after_receipt, r.d_retried
  FROM pinreset_ledger_reading(p_run_id, p_first, p_last) r
$$;

REVOKE EXECUTE ON FUNCTION pinreset_ledger_reading(text, bigint, bigint, double precision, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pinreset_ledger_reading(text, bigint, bigint, double precision, integer) TO pinreset_worker;
