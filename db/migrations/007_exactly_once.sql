-- Exactly once against providers as they really behave (issue 10).
--
-- * Claims carry an owner (claim_token) and a lease (lease_until, database clock). Outcomes are
--   recorded only under the owner's token, and a 'sending' row is taken over only after its lease
--   plus a grace (>= provider request timeout + the provider's list lag) has passed: a frozen or
--   partitioned worker cannot send or record after its lease is gone, whatever Temporal thinks.
-- * An attempt that may have reached the provider is parked 'ambiguous' (never retried in place,
--   never put back to plain 'pending') and resolved by SID, callback or list lookups.
-- * Each row has a reference: a keyed MAC of the run's secret key and the account id (64 bits),
--   not computable from the run id. It rides in the message text and the callback URL.
-- * The message text's parameters are frozen in the run row, so every worker sends the same text.
-- * The default cohort is every account that is not closed or deleted: a suspended account's
--   exposed PIN is just as usable.

ALTER TABLE runs ADD COLUMN IF NOT EXISTS reference_key bytea;
UPDATE runs SET reference_key = decode(replace(gen_random_uuid()::text, '-', ''), 'hex')
                                || decode(replace(gen_random_uuid()::text, '-', ''), 'hex')
WHERE reference_key IS NULL;
ALTER TABLE runs ALTER COLUMN reference_key SET DEFAULT (
  decode(replace(gen_random_uuid()::text, '-', ''), 'hex') || decode(replace(gen_random_uuid()::text, '-', ''), 'hex')
);
ALTER TABLE runs ALTER COLUMN reference_key SET NOT NULL;
-- Carrier name, reset URL, Message-ID domain, senders: fixed when the run is created.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS message jsonb;

ALTER TABLE ledger ADD COLUMN IF NOT EXISTS ref text;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS claim_token uuid;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS lease_until timestamptz;
-- Latest moment the parked attempt may have been handed to the provider.
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS ambiguous_since timestamptz;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS negative_lookups integer NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS next_lookup_at timestamptz;
-- Some attempt of this row was ambiguous: a redrive must not send again after a 'failed'.
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS ever_ambiguous boolean NOT NULL DEFAULT false;
-- How a parked row was settled: sid, callback, list, resend (policy), held (policy).
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS resolved_by text;

ALTER TABLE ledger DROP CONSTRAINT IF EXISTS ledger_notify_state_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_notify_state_check
  CHECK (notify_state IN ('pending', 'sending', 'ambiguous', 'sent', 'unreachable', 'failed', 'skipped'));

-- Callbacks and reconciliation find a row by its reference.
CREATE UNIQUE INDEX IF NOT EXISTS ledger_ref_idx ON ledger (ref) WHERE ref IS NOT NULL;
-- Parked rows are few: a partial index keeps finding them cheap on a run of millions.
CREATE INDEX IF NOT EXISTS ledger_ambiguous_idx ON ledger (run_id, account_id) WHERE notify_state = 'ambiguous';

-- HMAC-SHA-256 of the run's key over the account id, in two steps so a statement pays the key
-- padding once (pinreset_ref_pads) and two sha256 per account (pinreset_ref). 16 hex digits are
-- the first 64 bits of the MAC.
CREATE OR REPLACE FUNCTION pinreset_ref_pads(p_key bytea, OUT ipad bytea, OUT opad bytea)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT decode(string_agg(lpad(to_hex(get_byte(k, i) # 54), 2, '0'), '' ORDER BY i), 'hex'),
         decode(string_agg(lpad(to_hex(get_byte(k, i) # 92), 2, '0'), '' ORDER BY i), 'hex')
  FROM (SELECT CASE WHEN length(p_key) > 64 THEN sha256(p_key) ELSE p_key END AS raw) r,
       LATERAL (SELECT raw || decode(repeat('00', 64 - length(raw)), 'hex') AS k) kk,
       generate_series(0, 63) i
$$;

CREATE OR REPLACE FUNCTION pinreset_ref(p_ipad bytea, p_opad bytea, p_account_id bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT upper(substr(encode(sha256(p_opad || sha256(p_ipad || int8send(p_account_id))), 'hex'), 1, 16))
$$;

-- Claim the next pending accounts of a batch under a token and a lease. Only 'pending' rows:
-- a row some attempt may have sent is never claimed this way.
CREATE OR REPLACE FUNCTION pinreset_claim_notify_leased(
  p_run_id text, p_after bigint, p_last bigint, p_limit integer, p_token uuid, p_lease_ms integer
) RETURNS TABLE (
  account_id bigint, ref text, attempts integer, fell_back boolean, lease_until timestamptz,
  status text, phone text, phone_type text, sms_opt_out boolean, email text, email_opt_out boolean
)
LANGUAGE sql AS $$
  WITH chunk AS (
    SELECT l.account_id
    FROM ledger l
    WHERE l.run_id = p_run_id AND l.account_id > p_after AND l.account_id <= p_last
      AND l.reset_state = 'reset' AND l.notify_state = 'pending'
    ORDER BY l.account_id
    LIMIT p_limit
    FOR UPDATE OF l SKIP LOCKED
  ),
  k AS (SELECT p.ipad, p.opad FROM runs r, pinreset_ref_pads(r.reference_key) p WHERE r.id = p_run_id),
  claimed AS (
    UPDATE ledger l
    SET notify_state = 'sending', claim_token = p_token,
        lease_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0),
        attempt_started_at = clock_timestamp(), attempts = l.attempts + 1,
        ref = coalesce(l.ref, pinreset_ref((SELECT ipad FROM k), (SELECT opad FROM k), l.account_id))
    WHERE l.run_id = p_run_id AND l.account_id = ANY (ARRAY(SELECT c.account_id FROM chunk c))
      AND l.notify_state = 'pending'
    RETURNING l.account_id, l.ref, l.attempts, l.fell_back, l.lease_until
  )
  SELECT c.account_id, c.ref, c.attempts, c.fell_back, c.lease_until,
         a.status, a.phone, a.phone_type, a.sms_opt_out, a.email, a.email_opt_out
  FROM claimed c LEFT JOIN accounts a ON a.id = c.account_id
  ORDER BY c.account_id
$$;

-- Extend the lease of the rows this token still holds: claimed to send ('sending') or to look up
-- ('ambiguous'). Returns the ids still held (a row missing from the answer was taken over: its
-- holder must stop at once) and the run's status, so pause and cancel reach every send path within
-- one renewal.
CREATE OR REPLACE FUNCTION pinreset_renew_claims(p_run_id text, p_token uuid, p_account_ids bigint[], p_lease_ms integer)
RETURNS TABLE (held bigint[], lease_until timestamptz, run_status text)
LANGUAGE sql AS $$
  WITH renewed AS (
    UPDATE ledger l
    SET lease_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0)
    WHERE l.run_id = p_run_id AND l.account_id = ANY (p_account_ids)
      AND l.claim_token = p_token AND l.notify_state IN ('sending', 'ambiguous')
    RETURNING l.account_id, l.lease_until
  )
  SELECT coalesce((SELECT array_agg(account_id) FROM renewed), '{}'),
         coalesce((SELECT max(r.lease_until) FROM renewed r), clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0)),
         (SELECT status FROM runs WHERE id = p_run_id)
$$;

-- Record outcomes under the claimer's token only. 'pending' hands back a row its holder never gave
-- to a provider; 'ambiguous' parks a row whose attempt may have reached the provider, with the
-- time of the first lookup. Returns the ids recorded: the others were fenced off (taken over).
CREATE OR REPLACE FUNCTION pinreset_record_leased(
  p_run_id text, p_token uuid, p_account_ids bigint[], p_states text[], p_channels text[],
  p_fell_back boolean[], p_message_ids text[], p_error_codes text[], p_next_lookup_ms integer[]
) RETURNS bigint[]
LANGUAGE sql AS $$
  WITH o AS (
    SELECT * FROM unnest(p_account_ids, p_states, p_channels, p_fell_back, p_message_ids, p_error_codes, p_next_lookup_ms)
      AS o(account_id, state, channel, fell_back, message_id, error_code, next_lookup_ms)
  ), done AS (
    UPDATE ledger l
    SET notify_state = o.state,
        channel = coalesce(o.channel, l.channel),
        fell_back = o.fell_back,
        claim_token = NULL, lease_until = NULL,
        attempt_started_at = CASE WHEN o.state = 'pending' THEN NULL ELSE l.attempt_started_at END,
        attempts = CASE WHEN o.state = 'pending' THEN greatest(l.attempts - 1, 0) ELSE l.attempts END,
        provider_message_id = coalesce(o.message_id, l.provider_message_id),
        error_code = o.error_code,
        ambiguous_since = CASE WHEN o.state = 'ambiguous' THEN clock_timestamp() ELSE l.ambiguous_since END,
        next_lookup_at = CASE WHEN o.state = 'ambiguous' THEN clock_timestamp() + make_interval(secs => coalesce(o.next_lookup_ms, 0) / 1000.0) END,
        negative_lookups = CASE WHEN o.state = 'ambiguous' THEN 0 ELSE l.negative_lookups END,
        ever_ambiguous = l.ever_ambiguous OR o.state = 'ambiguous',
        notified_at = CASE WHEN o.state = 'sent' THEN clock_timestamp() ELSE l.notified_at END
    FROM o
    WHERE l.run_id = p_run_id AND l.account_id = o.account_id
      AND l.claim_token = p_token AND l.notify_state = 'sending'
    RETURNING l.account_id
  )
  SELECT coalesce(array_agg(account_id), '{}') FROM done
$$;

-- Take over the claims of a batch whose lease and grace have passed (the holder died, froze or was
-- cut off): they become 'ambiguous', due for a first lookup now, since by then anything the holder
-- sent is visible in the provider's list (the grace covers the list lag). Returns how many.
CREATE OR REPLACE FUNCTION pinreset_park_expired_claims(p_run_id text, p_first bigint, p_last bigint, p_grace_ms integer)
RETURNS integer
LANGUAGE sql AS $$
  WITH parked AS (
    UPDATE ledger l
    SET notify_state = 'ambiguous', ambiguous_since = coalesce(l.lease_until, l.attempt_started_at, clock_timestamp()),
        next_lookup_at = clock_timestamp(), negative_lookups = 0, ever_ambiguous = true, claim_token = NULL,
        error_code = 'claim_expired'
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last
      AND l.notify_state = 'sending'
      -- A row claimed before leases existed (a run upgraded mid-flight) counts from its attempt.
      AND coalesce(l.lease_until, l.attempt_started_at, '-infinity') + make_interval(secs => p_grace_ms / 1000.0) < clock_timestamp()
    RETURNING 1
  )
  SELECT count(*)::integer FROM parked
$$;

-- Claim the parked rows of a batch that are due for a lookup, under a token and a lease, like a
-- normal claim; they stay 'ambiguous' (nothing may send them blindly) while the lookup runs.
CREATE OR REPLACE FUNCTION pinreset_claim_due_ambiguous(
  p_run_id text, p_first bigint, p_last bigint, p_limit integer, p_token uuid, p_lease_ms integer
) RETURNS TABLE (
  account_id bigint, ref text, channel text, provider_message_id text, ambiguous_since timestamptz,
  negative_lookups integer, attempts integer, fell_back boolean, lease_until timestamptz,
  status text, phone text, phone_type text, sms_opt_out boolean, email text, email_opt_out boolean
)
LANGUAGE sql AS $$
  WITH due AS (
    SELECT l.account_id
    FROM ledger l
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last
      AND l.notify_state = 'ambiguous' AND l.next_lookup_at IS NOT NULL AND l.next_lookup_at <= clock_timestamp()
      AND (l.claim_token IS NULL OR l.lease_until < clock_timestamp())
    ORDER BY l.account_id
    LIMIT p_limit
    FOR UPDATE OF l SKIP LOCKED
  ),
  k AS (SELECT p.ipad, p.opad FROM runs r, pinreset_ref_pads(r.reference_key) p WHERE r.id = p_run_id),
  claimed AS (
    UPDATE ledger l
    SET claim_token = p_token, lease_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0),
        ref = coalesce(l.ref, pinreset_ref((SELECT ipad FROM k), (SELECT opad FROM k), l.account_id))
    WHERE l.run_id = p_run_id AND l.account_id = ANY (ARRAY(SELECT d.account_id FROM due d))
    RETURNING l.account_id, l.ref, l.channel, l.provider_message_id, l.ambiguous_since, l.negative_lookups,
              l.attempts, l.fell_back, l.lease_until
  )
  SELECT c.account_id, c.ref, c.channel, c.provider_message_id, c.ambiguous_since, c.negative_lookups,
         c.attempts, c.fell_back, c.lease_until,
         a.status, a.phone, a.phone_type, a.sms_opt_out, a.email, a.email_opt_out
  FROM claimed c LEFT JOIN accounts a ON a.id = c.account_id
  ORDER BY c.account_id
$$;

-- Settle a parked row under the token of its lookup claim:
--   'found'    -> sent, with the SID and how it was found (sid, callback, list);
--   'negative' -> one more negative lookup, next one after p_next_ms;
--   'postpone' -> the lookup itself failed: try again after p_next_ms, count nothing;
--   'resend'   -> back to 'sending' under the same token (the caller sends now);
--   'held'     -> stays 'ambiguous' for good (policy hold), reported with its reason.
CREATE OR REPLACE FUNCTION pinreset_settle_ambiguous(
  p_run_id text, p_token uuid, p_account_id bigint, p_verdict text, p_message_id text, p_resolved_by text,
  p_next_ms integer, p_lease_ms integer
) RETURNS boolean
LANGUAGE sql AS $$
  WITH s AS (
    UPDATE ledger l
    SET notify_state = CASE p_verdict WHEN 'found' THEN 'sent' WHEN 'resend' THEN 'sending' ELSE 'ambiguous' END,
        -- Only SMS can be found (by SID or list); a row taken over from a dead holder had none yet.
        channel = CASE WHEN p_verdict = 'found' THEN 'sms' ELSE l.channel END,
        provider_message_id = coalesce(p_message_id, l.provider_message_id),
        resolved_by = CASE WHEN p_verdict IN ('found', 'resend', 'held') THEN p_resolved_by ELSE l.resolved_by END,
        notified_at = CASE WHEN p_verdict = 'found' THEN coalesce(l.ambiguous_since, clock_timestamp()) ELSE l.notified_at END,
        error_code = CASE p_verdict WHEN 'found' THEN NULL WHEN 'held' THEN 'ambiguous_held' ELSE l.error_code END,
        negative_lookups = l.negative_lookups + CASE WHEN p_verdict = 'negative' THEN 1 ELSE 0 END,
        next_lookup_at = CASE WHEN p_verdict IN ('negative', 'postpone')
                              THEN clock_timestamp() + make_interval(secs => p_next_ms / 1000.0) END,
        attempt_started_at = CASE WHEN p_verdict = 'resend' THEN clock_timestamp() ELSE l.attempt_started_at END,
        attempts = l.attempts + CASE WHEN p_verdict = 'resend' THEN 1 ELSE 0 END,
        claim_token = CASE WHEN p_verdict = 'resend' THEN p_token END,
        lease_until = CASE WHEN p_verdict = 'resend' THEN clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0) END
    WHERE l.run_id = p_run_id AND l.account_id = p_account_id
      AND l.claim_token = p_token AND l.notify_state = 'ambiguous'
    RETURNING 1
  )
  SELECT EXISTS (SELECT 1 FROM s)
$$;

-- What is still unsettled in a batch: rows waiting for a claim ('pending', e.g. handed back by a
-- stopped attempt), rows held by someone ('sending'), parked rows waiting for a lookup, and when
-- the next lookup is due or the next lease ends (NULL when none).
CREATE OR REPLACE FUNCTION pinreset_unsettled(p_run_id text, p_first bigint, p_last bigint)
RETURNS TABLE (pending integer, sending integer, ambiguous_due integer, next_due timestamptz, next_expiry timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT count(*) FILTER (WHERE notify_state = 'pending')::integer,
         count(*) FILTER (WHERE notify_state = 'sending')::integer,
         count(*) FILTER (WHERE notify_state = 'ambiguous' AND next_lookup_at IS NOT NULL)::integer,
         min(next_lookup_at) FILTER (WHERE notify_state = 'ambiguous'),
         min(lease_until) FILTER (WHERE notify_state = 'sending')
  FROM ledger
  WHERE run_id = p_run_id AND account_id BETWEEN p_first AND p_last
    AND notify_state IN ('pending', 'sending', 'ambiguous') AND reset_state = 'reset'
$$;

-- Counts gain 'ambiguous' (parked and not resolved: held by policy or still waiting).
DROP FUNCTION IF EXISTS pinreset_counts(text, bigint, bigint);
CREATE FUNCTION pinreset_counts(p_run_id text, p_first bigint DEFAULT NULL, p_last bigint DEFAULT NULL)
RETURNS TABLE (
  planned integer, reset integer, skipped integer, sent_sms integer, sent_email integer, fell_back integer,
  unreachable integer, failed integer, notify_skipped integer, pending integer, ambiguous integer
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
         count(*) FILTER (WHERE notify_state IN ('pending', 'sending') AND reset_state <> 'skipped')::integer,
         count(*) FILTER (WHERE notify_state = 'ambiguous')::integer
  FROM ledger
  WHERE run_id = p_run_id
    AND (p_first IS NULL OR account_id >= p_first)
    AND (p_last IS NULL OR account_id <= p_last)
$$;

-- The exposed set: every account not closed or deleted (active and suspended).
CREATE OR REPLACE FUNCTION pinreset_materialize_active_cohort(p_run_id text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ledger WHERE run_id = p_run_id) THEN
    INSERT INTO ledger (run_id, account_id)
    SELECT p_run_id, id FROM accounts WHERE status NOT IN ('closed', 'deleted') ORDER BY id
    ON CONFLICT DO NOTHING;
  END IF;
  SELECT count(*) INTO n FROM ledger WHERE run_id = p_run_id;
  UPDATE runs SET planned = n WHERE id = p_run_id;
  RETURN n;
END $$;

-- One live run per account: the first unfinished run (other than p_run_id) that holds any of the
-- given accounts, or of every open account when p_account_ids is NULL (the default cohort).
-- Unfinished: created, running, paused or cancelling (a terminated workflow leaves its run 'running' until
-- `pinreset finish` completes it).
CREATE OR REPLACE FUNCTION pinreset_find_live_overlap(p_run_id text, p_account_ids bigint[])
RETURNS TABLE (run_id text, reason text, status text)
LANGUAGE sql STABLE AS $$
  SELECT r.id, r.reason, r.status
  FROM runs r
  WHERE r.id <> p_run_id AND r.status IN ('created', 'running', 'paused', 'cancelling')
    AND EXISTS (
      SELECT 1 FROM ledger l
      WHERE l.run_id = r.id AND l.reset_state <> 'skipped'
        AND l.notify_state NOT IN ('sent', 'unreachable', 'failed', 'skipped')
        AND (p_account_ids IS NULL OR l.account_id = ANY (p_account_ids))
    )
  ORDER BY r.created_at
  LIMIT 1
$$;

-- Accounts of the cohort already reset by a run of the same incident (same reason).
CREATE OR REPLACE FUNCTION pinreset_count_already_reset(p_run_id text, p_reason text, p_account_ids bigint[])
RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT count(DISTINCT l.account_id)::integer
  FROM runs r JOIN ledger l ON l.run_id = r.id
  WHERE r.id <> p_run_id AND r.reason = p_reason AND l.reset_state = 'reset'
    AND (p_account_ids IS NULL OR l.account_id = ANY (p_account_ids))
$$;

-- pinreset_reset_batch: 006's function with one change. A run started with --notify-only (for
-- accounts a run of the same incident already reset) takes the redrive branch: it notifies without
-- invalidating a PIN the customer may have set since, and still resets an account no run ever
-- reset (the safety net of 004).
CREATE OR REPLACE FUNCTION pinreset_reset_batch(p_run_id text, p_first bigint, p_last bigint, p_reason text)
RETURNS TABLE (reset integer, skipped integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_reset bigint[];
  v_done bigint;
  v_skipped bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM runs WHERE id = p_run_id AND (cohort_kind = 'redrive' OR params->>'resetMode' = 'notify_only')) THEN
    -- 1. Lock the batch's pending rows: a second call on the same batch (a retry beside a zombie
    --    attempt) waits here, and then finds nothing pending.
    PERFORM 1 FROM ledger l
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last AND l.reset_state = 'pending'
    FOR UPDATE OF l;
    -- 2. Invalidate the PINs of the accounts still open; remember exactly which.
    WITH invalidated AS (
      UPDATE accounts a
      SET pin_hash = NULL, pin_salt = NULL, pin_status = 'reset_required',
          credential_version = a.credential_version + 1,
          pin_reset_at = now(), pin_reset_reason = p_reason, updated_at = now()
      FROM ledger l
      WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last AND l.reset_state = 'pending'
        AND a.id BETWEEN p_first AND p_last AND a.id = l.account_id AND a.status NOT IN ('closed', 'deleted')
      RETURNING a.id
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_reset FROM invalidated;
    -- 3. Move every locked row forward: 'reset' exactly when step 2 invalidated its PIN, then
    --    every row still pending 'skipped', with the reason. No joins: one table each, on the key.
    UPDATE ledger l
    SET reset_state = 'reset', reset_at = now()
    WHERE l.run_id = p_run_id AND l.account_id = ANY (v_reset) AND l.reset_state = 'pending';
    GET DIAGNOSTICS v_done = ROW_COUNT;
    UPDATE ledger l
    SET reset_state = 'skipped', reset_at = now(), notify_state = 'skipped',
        error_code = coalesce('account_' || (SELECT a.status FROM accounts a WHERE a.id = l.account_id), 'account_deleted')
    WHERE l.run_id = p_run_id AND l.account_id BETWEEN p_first AND p_last AND l.reset_state = 'pending';
    GET DIAGNOSTICS v_skipped = ROW_COUNT;
    RETURN QUERY SELECT v_done::integer, v_skipped::integer;
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
