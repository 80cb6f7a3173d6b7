// Read-only queries behind the chaos run's verdict (chaos/main.ts, tests/chaos.test.ts):
// a snapshot of credential versions before the run, live progress, and the end-of-run checks.
import type { Sql } from '../pool';

export interface VersionSnapshot {
  ids: number[];
  versions: number[];
  /** Accounts active when the snapshot was taken: what an all_active cohort must be. */
  active: number;
}

/** Every account's credential_version (and whether it is active), before a run starts. */
export async function snapshotVersions(db: Sql): Promise<VersionSnapshot> {
  const res = await db.query<{ ids: number[]; versions: number[]; active: number }>(
    `SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids,
            coalesce(array_agg(credential_version ORDER BY id), '{}') AS versions,
            count(*) FILTER (WHERE status = 'active')::int AS active
     FROM accounts`,
  );
  const r = res.rows[0];
  return { ids: r.ids.map(Number), versions: r.versions, active: r.active };
}

/** Progress of a run in [0, 1]: resets weigh 10%, settled notifications 90%. */
export async function runProgress(
  db: Sql,
  runId: string,
): Promise<{ progress: number; planned: number; reset: number; settled: number }> {
  const res = await db.query<{ planned: number; reset: number; settled: number }>(
    `SELECT count(*)::int AS planned,
            count(*) FILTER (WHERE reset_state <> 'pending')::int AS reset,
            count(*) FILTER (WHERE notify_state NOT IN ('pending', 'sending'))::int AS settled
     FROM ledger WHERE run_id = $1`,
    [runId],
  );
  const { planned, reset, settled } = res.rows[0];
  const progress = planned === 0 ? 0 : (0.1 * reset) / planned + (0.9 * settled) / planned;
  return { progress, planned, reset, settled };
}

export interface ResetCheck {
  /** Ledger rows of the run (the cohort). */
  cohort: number;
  resetRows: number;
  /** Reset rows whose credential_version rose by exactly one, PIN cleared, reset required. */
  resetOnce: number;
  /** Reset rows whose version rose by more than one: reset twice. */
  resetTwice: number;
  /** Reset rows whose version did not rise (or whose account is gone). */
  resetMissing: number;
  skippedRows: number;
  /** Skipped rows whose version changed anyway, or with no reason. */
  skippedChanged: number;
  skippedNoReason: number;
  /** Reset still pending at the end. */
  resetPending: number;
  /** Accounts outside the cohort whose version changed. */
  outsideChanged: number;
}

/** Reset invariants from the ledger, the accounts and the snapshot taken before the run. */
export async function checkResets(db: Sql, runId: string, before: VersionSnapshot): Promise<ResetCheck> {
  const res = await db.query(
    `WITH b AS (SELECT * FROM unnest($2::bigint[], $3::int[]) AS b(id, v)),
          c AS (
            SELECT l.reset_state, l.error_code, a.id AS present, a.credential_version AS v_after, a.pin_hash IS NULL AS cleared,
                   a.pin_status, b.v AS v_before
            FROM ledger l LEFT JOIN accounts a ON a.id = l.account_id LEFT JOIN b ON b.id = l.account_id
            WHERE l.run_id = $1
          )
     SELECT count(*)::int AS cohort,
            count(*) FILTER (WHERE reset_state = 'reset')::int AS reset_rows,
            count(*) FILTER (WHERE reset_state = 'reset' AND v_after - v_before = 1 AND cleared AND pin_status = 'reset_required')::int AS reset_once,
            count(*) FILTER (WHERE reset_state = 'reset' AND v_after - v_before > 1)::int AS reset_twice,
            count(*) FILTER (WHERE reset_state = 'reset' AND (present IS NULL OR v_after - v_before < 1))::int AS reset_missing,
            count(*) FILTER (WHERE reset_state = 'skipped')::int AS skipped_rows,
            count(*) FILTER (WHERE reset_state = 'skipped' AND present IS NOT NULL AND v_after IS DISTINCT FROM v_before)::int AS skipped_changed,
            count(*) FILTER (WHERE reset_state = 'skipped' AND error_code IS NULL)::int AS skipped_no_reason,
            count(*) FILTER (WHERE reset_state = 'pending')::int AS reset_pending,
            (SELECT count(*)::int FROM accounts a JOIN b ON b.id = a.id
              WHERE a.credential_version <> b.v AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.run_id = $1 AND l.account_id = a.id)) AS outside_changed
     FROM c`,
    [runId, before.ids, before.versions],
  );
  const r = res.rows[0];
  return {
    cohort: r.cohort,
    resetRows: r.reset_rows,
    resetOnce: r.reset_once,
    resetTwice: r.reset_twice,
    resetMissing: r.reset_missing,
    skippedRows: r.skipped_rows,
    skippedChanged: r.skipped_changed,
    skippedNoReason: r.skipped_no_reason,
    resetPending: r.reset_pending,
    outsideChanged: r.outside_changed,
  };
}

/** For an all_active run: cohort vs the accounts that were active before the run. */
export async function checkActiveCohort(
  db: Sql,
  runId: string,
  activeIds: number[],
): Promise<{ activeMissing: number; cohortNotActive: number }> {
  const res = await db.query(
    `WITH act AS (SELECT unnest($2::bigint[]) AS id), coh AS (SELECT account_id AS id FROM ledger WHERE run_id = $1)
     SELECT (SELECT count(*)::int FROM act WHERE id NOT IN (SELECT id FROM coh)) AS active_missing,
            (SELECT count(*)::int FROM coh WHERE id NOT IN (SELECT id FROM act)) AS cohort_not_active`,
    [runId, activeIds],
  );
  return { activeMissing: res.rows[0].active_missing, cohortNotActive: res.rows[0].cohort_not_active };
}

/** Ids of the exposed accounts now: every account not closed or deleted (taken before the run). */
export async function activeAccountIds(db: Sql): Promise<number[]> {
  const res = await db.query<{ ids: number[] }>(
    `SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids FROM accounts WHERE status NOT IN ('closed', 'deleted')`,
  );
  return res.rows[0].ids.map(Number);
}

export interface NotifyRow {
  accountId: number;
  resetState: string;
  notifyState: string;
  channel: string | null;
  fellBack: boolean;
  providerMessageId: string | null;
  errorCode: string | null;
  status: string | null;
  phone: string | null;
  phoneType: string | null;
  smsOptOut: boolean;
  email: string | null;
  emailOptOut: boolean;
  ref: string | null;
  /** How a parked row was settled (sid, callback, list, resend, held), or null. */
  resolvedBy: string | null;
  everAmbiguous: boolean;
}

/** Every ledger row of the run with the account's contact data, for the cross-check with the providers. */
export async function notifyRows(db: Sql, runId: string): Promise<NotifyRow[]> {
  const res = await db.query(
    `SELECT l.account_id, l.reset_state, l.notify_state, l.channel, l.fell_back, l.provider_message_id, l.error_code,
            l.ref, l.resolved_by, l.ever_ambiguous, a.status, a.phone, a.phone_type, a.sms_opt_out, a.email, a.email_opt_out
     FROM ledger l LEFT JOIN accounts a ON a.id = l.account_id
     WHERE l.run_id = $1 ORDER BY l.account_id`,
    [runId],
  );
  return res.rows.map((r) => ({
    accountId: r.account_id,
    resetState: r.reset_state,
    notifyState: r.notify_state,
    channel: r.channel,
    fellBack: r.fell_back,
    providerMessageId: r.provider_message_id,
    errorCode: r.error_code,
    status: r.status,
    phone: r.phone,
    phoneType: r.phone_type,
    smsOptOut: r.sms_opt_out ?? false,
    email: r.email,
    emailOptOut: r.email_opt_out ?? false,
    ref: r.ref,
    resolvedBy: r.resolved_by,
    everAmbiguous: r.ever_ambiguous,
  }));
}

export async function runStatus(db: Sql, runId: string): Promise<{ status: string; finished: boolean } | undefined> {
  const res = await db.query(`SELECT status, finished_at IS NOT NULL AS finished FROM runs WHERE id = $1`, [runId]);
  return res.rows[0];
}

/** A ledger row as the chaos report shows it for a duplicate: states, codes and times only (ms since `since`). */
export interface LedgerTrace {
  accountId: number;
  notifyState: string;
  channel: string | null;
  fellBack: boolean;
  attempts: number;
  everAmbiguous: boolean;
  resolvedBy: string | null;
  errorCode: string | null;
  deliveryState: string | null;
  deliveryCode: string | null;
  deliveryAction: string | null;
  attemptStartedMs: number | null;
  ambiguousSinceMs: number | null;
  notifiedMs: number | null;
  deliveryRetryMs: number | null;
}

/** The ledger rows of a few accounts of a run, for diagnosing a duplicate (no contact data). */
export async function ledgerTrace(db: Sql, runId: string, accountIds: number[], since: Date): Promise<LedgerTrace[]> {
  if (accountIds.length === 0) return [];
  const ms = (col: string) => `round(extract(epoch FROM ${col} - $3::timestamptz) * 1000)::float8`;
  const res = await db.query(
    `SELECT account_id::float8 AS "accountId", notify_state AS "notifyState", channel, fell_back AS "fellBack",
            attempts, ever_ambiguous AS "everAmbiguous", resolved_by AS "resolvedBy", error_code AS "errorCode",
            delivery_state AS "deliveryState", delivery_code AS "deliveryCode", delivery_action AS "deliveryAction",
            ${ms('attempt_started_at')} AS "attemptStartedMs", ${ms('ambiguous_since')} AS "ambiguousSinceMs",
            ${ms('notified_at')} AS "notifiedMs", ${ms('delivery_retry_at')} AS "deliveryRetryMs"
     FROM ledger WHERE run_id = $1 AND account_id = ANY ($2) ORDER BY account_id`,
    [runId, accountIds, since],
  );
  return res.rows as LedgerTrace[];
}
