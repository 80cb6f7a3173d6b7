-- The delivery follow-up's reads through small partial indexes (issue 11).
--
-- Every sweep (every 5 s while a run sends) looked for rows needing an action, retries due and
-- sends whose response was lost with conditions no index covered: three scans of the run's whole
-- ledger per sweep, ~0.2-0.5 s each at 850,000 accounts, for the few percent of rows that need
-- anything. Each index below holds only such rows, so a sweep reads what it acts on.

-- Final bad SMS outcomes (rowsNeedingAction); a row leaves once it falls back (channel email) or
-- becomes unreachable; those recorded with nothing to do (30008) stay, about 1% of a cohort.
CREATE INDEX IF NOT EXISTS ledger_delivery_bad ON ledger (run_id, account_id)
  WHERE channel = 'sms' AND notify_state = 'sent' AND delivery_state IN ('undelivered', 'failed');

-- SMS retries scheduled or claimed (retriesDue).
CREATE INDEX IF NOT EXISTS ledger_delivery_retry ON ledger (run_id, account_id)
  WHERE delivery_action IN ('retry_scheduled', 'retry_sending');

-- SMS that failed without a SID: possibly sent, response lost (rowsWithoutSid).
CREATE INDEX IF NOT EXISTS ledger_sms_no_sid ON ledger (run_id, account_id)
  WHERE channel = 'sms' AND notify_state = 'failed' AND provider_message_id IS NULL AND ref IS NOT NULL;
