-- Operators (issue 14): stopping what they start, approving a canary, reading the end.
--
-- * runs.status gains 'cancelling': a cancel was requested and the run is winding down. Together
--   with 'paused' it tells every worker's send path to stop before its next provider call
--   (db/sql/read-run-stop.ts). The workflow writes it the moment the signal arrives.
-- * control_seq orders those writes: a pause, resume and pause sent in quick succession are
--   recorded by separate activities that may run out of order; the highest sequence wins.
-- * stop_requested_at: when the latest pause or cancel was requested (NULL while running), so the
--   stop latency can be measured from the database's own clock.
-- * approved_by / approved_at: who let a canary run proceed, and when.
-- * source_run_id: the run a redrive retries (links a redrive to its source).

ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('created', 'running', 'paused', 'cancelling', 'completed', 'cancelled', 'failed'));

ALTER TABLE runs ADD COLUMN IF NOT EXISTS control_seq integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS stop_requested_at timestamptz;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS approved_by text;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS approved_at timestamptz;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS source_run_id text REFERENCES runs (id);

-- The workflow's latest live reading of the ledger (rate, in flight, error codes: counts only),
-- so `status` and the metrics can show it without scanning the ledger again.
ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS live jsonb;

-- The worker records controls and approvals (see 005 for the rest of its rights). source_run_id
-- is set by the CLI when it creates a redrive run: not the worker's.
GRANT UPDATE (control_seq, stop_requested_at, approved_by, approved_at) ON runs TO pinreset_worker;
