-- The receipts fold, made safe at 850,000 messages (issue 11).
--
-- 1. It no longer locks the run's row. 009's fold took `runs ... FOR UPDATE` for its whole
--    transaction, and every send slot (pinreset_acquire_send_budget), checkpoint insert (its
--    foreign key) and lease renewal of the run waits on that row: a slow fold stopped the run.
--    Seen in `npm run bench -- --only pipeline --accounts 200000`: one fold ran 90 s and the run
--    sent nothing for those 90 s. Two folds of one run (a retry beside a zombie) now take turns on
--    a transaction-scoped advisory lock instead; the watermark is written last, briefly.
-- 2. Its plan cannot turn quadratic. 009 joined sms_receipts to the ledger in one statement; on a
--    ledger the planner had no statistics for yet (a run's rows are inserted by the freeze just
--    before), it chose a nested loop over a sequential scan of the ledger per receipt (5,858
--    receipts x 325,000 ledger row versions: the 90 s above). The changed SIDs are gathered first
--    and the ledger is reached through its SID index by `= ANY(array)`, whatever the statistics say.
-- 3. A receipt that arrives before its ledger row has the SID is folded too. 009 looked only at
--    receipts changed since the last fold: a callback that beat the worker's outcome write (a
--    lost create response resolved later, a slow group write, an SMS retry recorded after its
--    callback) was left for the deadline's fetch by SID, minutes later. Now the rows that got a
--    SID since the last fold (through ledger_delivery_open, the small set of SMS still awaiting a
--    final receipt) are matched to receipts already stored.
-- 4. Email rows the relay accepted become 'sent' through a partial index of those not yet marked,
--    instead of a scan of the run's whole ledger every fold.

CREATE INDEX IF NOT EXISTS ledger_email_unfolded ON ledger (run_id, account_id)
  WHERE channel = 'email' AND notify_state = 'sent' AND delivery_state IS NULL;

CREATE OR REPLACE FUNCTION pinreset_fold_receipts(p_run_id text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_since timestamptz;
  v_now timestamptz;
  v_sids text[];
  v_n integer;
  v_o integer;
  v_m integer;
BEGIN
  -- One fold of a run at a time, without touching the run's row until the very end.
  PERFORM pg_advisory_xact_lock(hashtextextended('pinreset_fold_receipts:' || p_run_id, 0));
  v_now := clock_timestamp();
  SELECT coalesce(delivery_watermark, '-infinity') - interval '10 seconds' INTO v_since FROM runs WHERE id = p_run_id;
  IF NOT FOUND THEN RAISE EXCEPTION 'unknown run %', p_run_id; END IF;

  -- Receipts that changed since the last fold, to the rows holding their SID.
  SELECT array_agg(r.message_sid) INTO v_sids
  FROM sms_receipts r WHERE r.run_id = p_run_id AND r.updated_at >= v_since;
  UPDATE ledger l
  SET delivery_state = pinreset_delivery_state_of(r.status), delivery_code = r.error_code,
      delivery_updated_at = r.updated_at, delivery_final_at = r.final_at
  FROM sms_receipts r
  WHERE l.provider_message_id = ANY(coalesce(v_sids, '{}')) AND r.message_sid = l.provider_message_id
    AND l.run_id = p_run_id AND l.channel = 'sms' AND pinreset_delivery_rank(l.delivery_state) < r.rank;
  GET DIAGNOSTICS v_n = ROW_COUNT;

  -- Rows that got their SID since the last fold (sent, adopted or retried), to receipts already stored.
  UPDATE ledger l
  SET delivery_state = pinreset_delivery_state_of(r.status), delivery_code = r.error_code,
      delivery_updated_at = r.updated_at, delivery_final_at = r.final_at
  FROM sms_receipts r
  WHERE l.run_id = p_run_id AND l.channel = 'sms' AND l.notify_state = 'sent'
    AND (l.delivery_state IS NULL OR l.delivery_state IN ('accepted', 'sent'))
    AND coalesce(l.delivery_updated_at, l.notified_at) >= v_since
    AND r.message_sid = l.provider_message_id AND pinreset_delivery_rank(l.delivery_state) < r.rank;
  GET DIAGNOSTICS v_o = ROW_COUNT;

  UPDATE ledger l SET delivery_state = 'sent', delivery_updated_at = l.notified_at
  WHERE l.run_id = p_run_id AND l.channel = 'email' AND l.notify_state = 'sent' AND l.delivery_state IS NULL;

  UPDATE ledger l
  SET delivery_state = 'undelivered', delivery_code = 'email_' || b.event || coalesce(':' || b.reason, ''),
      delivery_updated_at = b.received_at, delivery_final_at = b.received_at, delivery_action = 'email_bounced'
  FROM email_bounces b
  WHERE b.received_at >= v_since AND l.run_id = p_run_id
    AND l.provider_message_id = b.message_id AND l.channel = 'email' AND l.delivery_action IS DISTINCT FROM 'email_bounced';
  GET DIAGNOSTICS v_m = ROW_COUNT;

  UPDATE runs SET delivery_watermark = greatest(delivery_watermark, v_now) WHERE id = p_run_id;
  RETURN v_n + v_o + v_m;
END $$;

REVOKE EXECUTE ON FUNCTION pinreset_fold_receipts(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pinreset_fold_receipts(text) TO pinreset_worker;
