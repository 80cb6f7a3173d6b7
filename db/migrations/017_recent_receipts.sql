-- The pause rules' reading of recent receipts without a scan of the run's receipts (issue 11).
--
-- Every follow-up sweep (every 5 s) judges the filtered share over the run's last 1,000 final
-- receipts and looks for any 30001. 009's query ordered by final_at, which no index covers, and
-- counted 30001s with a filter no index covers: two scans of every receipt of the run per sweep,
-- growing with the run (`npm run bench`, 850,000 accounts: 97 ms at 80,000 receipts, so ~1 s per
-- sweep by the end). Now:
-- - a final receipt is never updated again (the upsert moves only up the rank, and final is the
--   top), so its updated_at is the time its first final callback arrived, as its final_at is:
--   the last 1,000 finals are read backwards through sms_receipts_run_updated and the scan stops
--   there;
-- - 30001s (rare, never followed by a lower-ranked update) are counted through a partial index
--   that holds only them.

CREATE INDEX IF NOT EXISTS sms_receipts_queue_overflow ON sms_receipts (run_id, final_at) WHERE error_code = '30001';

CREATE OR REPLACE FUNCTION pinreset_recent_receipts(p_run_id text, p_from timestamptz, p_window integer)
RETURNS TABLE(finals integer, filtered integer, queue_overflow integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH recent AS (
    SELECT error_code FROM sms_receipts
    WHERE run_id = p_run_id AND updated_at >= p_from AND rank >= 4
    ORDER BY updated_at DESC LIMIT p_window
  )
  SELECT count(*)::integer, count(*) FILTER (WHERE error_code IN ('30007', '30034'))::integer,
         (SELECT count(*)::integer FROM sms_receipts
          WHERE run_id = p_run_id AND error_code = '30001' AND rank >= 4 AND final_at >= p_from)
  FROM recent
$$;
