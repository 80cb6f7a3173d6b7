-- The pipeline's own tables: runs, the per-account ledger and progress checkpoints.

CREATE TABLE IF NOT EXISTS runs (
  id                  text PRIMARY KEY,                   -- also the Temporal workflow id suffix
  reason              text NOT NULL,                      -- incident or ticket id
  operator            text NOT NULL,
  cohort_kind         text NOT NULL CHECK (cohort_kind IN ('all_active', 'file', 'redrive')),
  params              jsonb NOT NULL,                     -- batch size, concurrency, policy, dry run...
  status              text NOT NULL DEFAULT 'created'
                        CHECK (status IN ('created', 'running', 'paused', 'completed', 'cancelled', 'failed')),
  status_reason       text,
  planned             integer NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  resets_done_at      timestamptz,                        -- last PIN of the cohort invalidated
  finished_at         timestamptz,
  -- Global notification rate shared by every worker (GCRA): rate_tat is the theoretical arrival
  -- time of the next message slot. 0 = unlimited.
  rate_per_second     double precision NOT NULL DEFAULT 0 CHECK (rate_per_second >= 0),
  rate_tat            timestamptz NOT NULL DEFAULT now()
);

-- One row per run and cohort account: the cohort itself, frozen when the run is created, and
-- each account's reset and notification state. State moves only forward, which is what makes
-- every activity safe to run more than once.
CREATE TABLE IF NOT EXISTS ledger (
  run_id              text NOT NULL REFERENCES runs (id),
  account_id          bigint NOT NULL,                    -- no FK: a deleted account keeps its row
  reset_state         text NOT NULL DEFAULT 'pending' CHECK (reset_state IN ('pending', 'reset', 'skipped')),
  reset_at            timestamptz,
  notify_state        text NOT NULL DEFAULT 'pending'
                        CHECK (notify_state IN ('pending', 'sending', 'sent', 'unreachable', 'failed', 'skipped')),
  channel             text CHECK (channel IN ('sms', 'email')),
  fell_back           boolean NOT NULL DEFAULT false,     -- SMS failed permanently, email used instead
  attempts            integer NOT NULL DEFAULT 0,
  attempt_started_at  timestamptz,                        -- when the current send attempt began (reconciliation)
  provider_message_id text,
  error_code          text,                               -- provider code or reason, never customer data
  notified_at         timestamptz,
  PRIMARY KEY (run_id, account_id)
);

CREATE TABLE IF NOT EXISTS checkpoints (
  run_id              text NOT NULL REFERENCES runs (id),
  seq                 integer NOT NULL,
  counts              jsonb NOT NULL,
  phase               text NOT NULL,
  note                text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, seq)
);
