// The rows the delivery follow-up acts on, and what it records for each.
import type { Sql } from '../pool';

export interface DeliveryActionRow {
  accountId: number;
  /** The row's reference (db/migrations/007): in the text and the callback URL. */
  ref: string | null;
  deliveryState: string;
  code: string | null;
  /** The SMS was already sent a second time (after a 30003 or 30001). */
  retried: boolean;
  messageId: string | null;
  phone: string | null;
  phoneType: string | null;
  smsOptOut: boolean;
  email: string | null;
  emailOptOut: boolean;
  status: string | null;
}

const CONTACT = `a.phone, a.phone_type AS "phoneType", coalesce(a.sms_opt_out, false) AS "smsOptOut",
  a.email, coalesce(a.email_opt_out, false) AS "emailOptOut", a.status`;

/** Final bad SMS outcomes nothing was done about yet. */
export async function rowsNeedingAction(
  db: Sql,
  runId: string,
  limit: number,
  staleSeconds: number,
): Promise<(DeliveryActionRow & { fallbackClaimedAt: Date | null })[]> {
  const res = await db.query<DeliveryActionRow & { fallbackClaimedAt: Date | null }>(
    `SELECT l.account_id AS "accountId", l.ref, l.delivery_state AS "deliveryState", l.delivery_code AS code,
            (l.first_message_id IS NOT NULL OR l.delivery_action = 'sms_retried') AS retried, l.provider_message_id AS "messageId",
            CASE WHEN l.delivery_action = 'fallback_sending' THEN l.delivery_retry_at END AS "fallbackClaimedAt", ${CONTACT}
     FROM ledger l LEFT JOIN accounts a ON a.id = l.account_id
     WHERE l.run_id = $1 AND l.channel = 'sms' AND l.notify_state = 'sent' AND l.delivery_state IN ('undelivered', 'failed')
       AND (l.delivery_action IS NULL OR l.delivery_action = 'sms_retried'
            OR (l.delivery_action = 'fallback_sending' AND l.delivery_retry_at < clock_timestamp() - make_interval(secs => $3)))
     ORDER BY l.account_id LIMIT $2`,
    [runId, limit, staleSeconds],
  );
  return res.rows;
}

/** SMS retries that are due, and retries claimed by an attempt that died (older than `staleSeconds`). */
export async function retriesDue(
  db: Sql,
  runId: string,
  staleSeconds: number,
  limit: number,
): Promise<(DeliveryActionRow & { claimedAt: Date | null; action: string; retryAt: Date })[]> {
  const res = await db.query(
    `SELECT l.account_id AS "accountId", l.ref, l.delivery_state AS "deliveryState", l.delivery_code AS code, false AS retried,
            l.provider_message_id AS "messageId", CASE WHEN l.delivery_action = 'retry_sending' THEN l.delivery_retry_at END AS "claimedAt",
            l.delivery_action AS action, l.delivery_retry_at AS "retryAt", ${CONTACT}
     FROM ledger l LEFT JOIN accounts a ON a.id = l.account_id
     WHERE l.run_id = $1 AND l.channel = 'sms' AND l.notify_state = 'sent'
       AND ((l.delivery_action = 'retry_scheduled' AND l.delivery_retry_at <= clock_timestamp())
         OR (l.delivery_action = 'retry_sending' AND l.delivery_retry_at < clock_timestamp() - make_interval(secs => $2)))
     ORDER BY l.account_id LIMIT $3`,
    [runId, staleSeconds, limit],
  );
  return res.rows;
}

/** Records one decision, only if the row is still where it was read (a zombie twin changes nothing). */
export async function recordDeliveryAction(
  db: Sql,
  runId: string,
  accountId: number,
  expect: { action: string | null; messageId: string | null; retryAt?: Date },
  set: {
    action: string;
    retryAt?: Date;
    notifyState?: 'sent' | 'unreachable' | 'failed';
    channel?: 'sms' | 'email';
    fellBack?: boolean;
    messageId?: string;
    keepFirst?: boolean;
    deliveryState?: string | null;
    deliveryCode?: string | null;
    errorCode?: string;
  },
): Promise<boolean> {
  const res = await db.query(
    `UPDATE ledger SET
       delivery_action = $5,
       delivery_retry_at = coalesce($6, delivery_retry_at),
       notify_state = coalesce($7, notify_state),
       channel = coalesce($8, channel),
       fell_back = coalesce($9, fell_back),
       first_message_id = CASE WHEN $10::text IS NOT NULL AND $10 <> coalesce(provider_message_id, '') THEN coalesce(first_message_id, provider_message_id) ELSE first_message_id END,
       provider_message_id = coalesce($10, provider_message_id),
       delivery_state = CASE WHEN $11 THEN $12 ELSE delivery_state END,
       delivery_code = CASE WHEN $11 THEN $13 ELSE delivery_code END,
       delivery_updated_at = CASE WHEN $11 THEN clock_timestamp() ELSE delivery_updated_at END,
       error_code = coalesce($14, error_code)
     WHERE run_id = $1 AND account_id = $2 AND delivery_action IS NOT DISTINCT FROM $3 AND provider_message_id IS NOT DISTINCT FROM $4
       AND ($15::timestamptz IS NULL OR delivery_retry_at = $15)`,
    [
      runId,
      accountId,
      expect.action,
      expect.messageId,
      set.action,
      set.retryAt ?? null,
      set.notifyState ?? null,
      set.channel ?? null,
      set.fellBack ?? null,
      set.messageId ?? null,
      set.deliveryState !== undefined,
      set.deliveryState ?? null,
      set.deliveryCode ?? null,
      set.errorCode ?? null,
      expect.retryAt ?? null,
    ],
  );
  return res.rowCount === 1;
}

/** Ledger rows whose SMS may have gone out without us learning its SID (lost response). */
export async function rowsWithoutSid(
  db: Sql,
  runId: string,
  limit: number,
): Promise<{ accountId: number; ref: string }[]> {
  const res = await db.query(
    `SELECT account_id AS "accountId", ref FROM ledger
     WHERE run_id = $1 AND channel = 'sms' AND provider_message_id IS NULL AND notify_state = 'failed' AND ref IS NOT NULL
     ORDER BY account_id LIMIT $2`,
    [runId, limit],
  );
  return res.rows;
}

/** Receipts carrying one of these references in their callback URL. */
export async function receiptsByRef(
  db: Sql,
  runId: string,
  refs: string[],
): Promise<{ ref: string; messageSid: string }[]> {
  if (refs.length === 0) return [];
  const res = await db.query(
    `SELECT DISTINCT ON (ref) ref, message_sid AS "messageSid" FROM sms_receipts WHERE run_id = $1 AND ref = ANY($2) ORDER BY ref, first_at`,
    [runId, refs],
  );
  return res.rows;
}

/** A lost-response row identified by its callback: it was sent after all. */
export async function adoptLostSend(db: Sql, runId: string, accountId: number, messageSid: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE ledger SET notify_state = 'sent', provider_message_id = $3, error_code = NULL, notified_at = coalesce(notified_at, clock_timestamp())
     WHERE run_id = $1 AND account_id = $2 AND notify_state = 'failed' AND provider_message_id IS NULL`,
    [runId, accountId, messageSid],
  );
  return res.rowCount === 1;
}

/** SMS still waiting for a final receipt, and retries still to come. */
export async function openDeliveries(db: Sql, runId: string): Promise<number> {
  const res = await db.query<{ n: number }>(
    `SELECT count(*)::integer AS n FROM ledger
     WHERE run_id = $1 AND channel = 'sms' AND notify_state = 'sent'
       AND ((delivery_state IS NULL OR delivery_state IN ('accepted', 'sent'))
         OR delivery_action IN ('retry_scheduled', 'retry_sending', 'fallback_sending')
         OR (delivery_state IN ('undelivered', 'failed') AND (delivery_action IS NULL OR delivery_action = 'sms_retried')))`,
    [runId],
  );
  return res.rows[0].n;
}
