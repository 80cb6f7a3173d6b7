-- One pass over a run's ledger per live reading (issues 11 and 14).
--
-- A checkpoint reading (every 5 s while batches are in flight) read the run's rows four times:
-- pinreset_counts, the in-flight/rate/activity figures, the top error codes and
-- pinreset_delivery_counts, each a full pass over the run's rows (~0.45 s at 200,000 rows on the
-- loaded bench box). pinreset_ledger_reading computes all of them in one pass (1.4-1.75 s at
-- 850,000 rows on the loaded bench box); the codes of the few rows with an error are gathered
-- into arrays in that pass and ranked afterwards.
--
-- pinreset_counts and pinreset_delivery_counts stay as they are, for a batch's range and the
-- follow-up: each evaluates fewer conditions per row (a filtered count costs ~30 ns per row, and
-- this reading has 25). tests/ledger-reading.test.ts holds all three to one reference.

CREATE OR REPLACE FUNCTION pinreset_ledger_reading(
  p_run_id text, p_window_s double precision DEFAULT 60, p_top integer DEFAULT 5
) RETURNS TABLE(
  planned integer, reset integer, skipped integer, sent_sms integer, sent_email integer, fell_back integer,
  unreachable integer, failed integer, notify_skipped integer, pending integer, ambiguous integer,
  in_flight integer, sent_in_window integer, first_sent_ms double precision, last_activity_ms double precision,
  read_ms double precision, top_errors jsonb,
  d_accepted integer, d_sent integer, d_delivered integer, d_undelivered integer, d_failed integer, d_unknown integer,
  d_by_code jsonb, d_fell_back_after_receipt integer, d_retried integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH t AS (SELECT clock_timestamp() AS now, clock_timestamp() - make_interval(secs => p_window_s) AS since),
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
           count(*) FILTER (WHERE l.notified_at > t.since)::integer AS sent_in_window,
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
    GROUP BY t.now, t.since
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

REVOKE EXECUTE ON FUNCTION pinreset_ledger_reading(text, double precision, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pinreset_ledger_reading(text, double precision, integer) TO pinreset_worker;
