// Delivery truth: what Twilio's status callbacks say happened to an SMS after it was accepted,
// and what the run does about it. Pure: safe to import from workflow code and unit tested.

/** Delivery state of an account's message, as kept in the ledger (delivery_state). */
export type DeliveryState = 'accepted' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'unknown';
export const DELIVERY_STATES: readonly DeliveryState[] = [
  'accepted',
  'sent',
  'delivered',
  'undelivered',
  'failed',
  'unknown',
];

/**
 * Twilio's MessageStatus values a status callback may carry, ranked: callbacks arrive out of
 * order and more than once, so a state only ever moves to a higher rank. Final states share the
 * top rank: the first final state recorded stays (a late `sent` never downgrades `delivered`).
 */
const RANK: Record<string, number> = {
  accepted: 1,
  scheduled: 1,
  queued: 1,
  sending: 2,
  sent: 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
  canceled: 4,
  // WhatsApp/RCS only; after delivered. Kept so a `read` never counts as unknown.
  read: 5,
};
export const FINAL_RANK = 4;

export function statusRank(status: string): number | undefined {
  return RANK[status];
}

/** The ledger's delivery_state for a Twilio MessageStatus. */
export function deliveryStateOf(status: string): DeliveryState | undefined {
  switch (status) {
    case 'accepted':
    case 'scheduled':
    case 'queued':
    case 'sending':
      return 'accepted';
    case 'sent':
      return 'sent';
    case 'delivered':
    case 'read':
      return 'delivered';
    case 'undelivered':
      return 'undelivered';
    case 'failed':
    case 'canceled':
      return 'failed';
    default:
      return undefined;
  }
}

// ---- the callback URL ------------------------------------------------------------------------

/**
 * Retries Twilio makes of a failed callback, opt-in per URL through a connection-override
 * fragment (twilio.com/docs/usage/webhooks/webhooks-connection-overrides): `rc` = retry count
 * (0..5), `rp` = which failures are retried (`all`: connect and read timeouts, 4xx and 5xx).
 * The receiver answers 5xx while PostgreSQL is down, so those callbacks come again. The fragment
 * is never sent on the wire, so it is not part of the URL Twilio signs.
 */
export const CALLBACK_RETRY_FRAGMENT = '#rc=5&rp=all';

/** Refs and run ids travel in the URL: a narrow alphabet, so no escaping question arises. */
const TOKEN = /^[A-Za-z0-9-]{1,128}$/;

/**
 * The StatusCallback URL of one message: the public receiver URL plus the run id and the ledger
 * row's reference, so a callback identifies its row even when the create call's response (and
 * with it the MessageSid) was lost. The send path calls this when it creates a message.
 */
export function statusCallbackUrl(base: string, runId: string, ref: string): string {
  if (!TOKEN.test(runId)) throw new Error('statusCallbackUrl: run id must be 1-128 of [A-Za-z0-9-]');
  if (!TOKEN.test(ref)) throw new Error('statusCallbackUrl: ref must be 1-128 of [A-Za-z0-9-]');
  const url = new URL(base);
  if (url.hash) throw new Error('statusCallbackUrl: the base URL must not have a #fragment');
  url.searchParams.set('run', runId);
  url.searchParams.set('ref', ref);
  return `${url.toString()}${CALLBACK_RETRY_FRAGMENT}`;
}

/** The URL Twilio requests (and signs): the callback URL without its fragment. */
export function requestedUrl(callbackUrl: string): string {
  const hash = callbackUrl.indexOf('#');
  return hash < 0 ? callbackUrl : callbackUrl.slice(0, hash);
}

export interface StatusCallback {
  messageSid: string;
  status: string;
  rank: number;
  errorCode: string | null;
  runId: string | null;
  ref: string | null;
}

/**
 * Reads a (signature-checked) status callback: form parameters and the URL's query. Returns a
 * problem string for what the receiver must refuse (400): no usable SID or status.
 */
export function parseStatusCallback(params: Record<string, string>, query: URLSearchParams): StatusCallback | string {
  const messageSid = params.MessageSid ?? params.SmsSid;
  if (!messageSid || !/^(SM|MM)[0-9a-fA-F]{32}$/.test(messageSid)) return 'MessageSid missing or malformed';
  const status = params.MessageStatus ?? params.SmsStatus;
  const rank = status === undefined ? undefined : statusRank(status);
  if (status === undefined || rank === undefined) return 'MessageStatus missing or unknown';
  const code = params.ErrorCode;
  if (code !== undefined && code !== '' && !/^\d{1,6}$/.test(code)) return 'ErrorCode malformed';
  const runId = query.get('run');
  const ref = query.get('ref');
  return {
    messageSid,
    status,
    rank,
    errorCode: code ? code : null,
    runId: runId && TOKEN.test(runId) ? runId : null,
    ref: ref && TOKEN.test(ref) ? ref : null,
  };
}

// ---- acting on the outcome ------------------------------------------------------------------

/** Unknown handset / landline or unreachable carrier: email reaches the customer instead. */
export const FALLBACK_CODES: ReadonlySet<string> = new Set(['30005', '30006']);
/** Handset unreachable (often off or out of coverage): worth one more try later. */
export const RETRY_ONCE_CODES: ReadonlySet<string> = new Set(['30003']);
/** Carrier filtering / unregistered sender: a spike means our template or sender is blocked. */
export const FILTERED_CODES: ReadonlySet<string> = new Set(['30007', '30034']);
/** Sender queue overflow: we send faster than the sender's throughput. */
export const QUEUE_OVERFLOW_CODE = '30001';

export type DeliveryAction =
  | { kind: 'none' }
  | { kind: 'retry_sms' }
  | { kind: 'fallback' }
  /** Nothing more to do for the customer; the code is recorded. Counted toward a pause. */
  | { kind: 'filtered' }
  | { kind: 'queue_overflow' };

/**
 * What to do about a final SMS outcome. `retried` = this account's SMS was already sent again
 * once after a 30003. Filtered messages also fall back (the customer still has to be told), and
 * count toward the filtered-share pause.
 */
export function actionFor(state: DeliveryState, code: string | null, retried: boolean): DeliveryAction {
  if (state !== 'undelivered' && state !== 'failed') return { kind: 'none' };
  const c = code ?? '';
  if (c === QUEUE_OVERFLOW_CODE) return retried ? { kind: 'fallback' } : { kind: 'queue_overflow' };
  if (RETRY_ONCE_CODES.has(c)) return retried ? { kind: 'fallback' } : { kind: 'retry_sms' };
  if (FALLBACK_CODES.has(c)) return { kind: 'fallback' };
  if (FILTERED_CODES.has(c)) return { kind: 'filtered' };
  return { kind: 'none' };
}

export interface DeliveryGuard {
  /** Pause when more than this share of the recent final SMS receipts were filtered (30007/30034). */
  filteredRate: number;
  /** ...judged over at least this many final receipts. */
  minReceipts: number;
}

// 5%: a realistic background of ~1% filtered must never pause a run by chance (over 1,000
// receipts, 5% is 13 standard deviations above 1%); a filtered template gives far more.
export const DEFAULT_DELIVERY_GUARD: DeliveryGuard = { filteredRate: 0.05, minReceipts: 50 };

/** Why the run must pause, from recent receipt figures; undefined when it need not. */
export function deliveryPauseReason(
  recent: { finals: number; filtered: number; queueOverflow: number },
  guard: DeliveryGuard,
  ratePerSecond: number | 'unlimited',
  /** The sender's shared budget (messages/s, Infinity = unlimited), when known: every run's sends on it together. */
  senderBudget?: number,
): string | undefined {
  if (recent.queueOverflow > 0) {
    const rate = (r: number | 'unlimited') => (r === 'unlimited' || r === Infinity ? 'unlimited' : `${r} msg/s`);
    const budget =
      senderBudget === undefined ? '' : ` (the sender's budget, shared by all runs: ${rate(senderBudget)})`;
    const fix =
      senderBudget === undefined
        ? 'lower it with set-rate'
        : "lower the run's rate with set-rate or the sender's budget with `senders set-rate`";
    return `auto-paused: Twilio failed ${recent.queueOverflow} message(s) with 30001 (sender queue overflow): the rate ${rate(ratePerSecond)} is above the sender's throughput${budget}; ${fix}, then resume`;
  }
  if (recent.finals >= guard.minReceipts && recent.filtered / recent.finals > guard.filteredRate) {
    return `auto-paused: ${((100 * recent.filtered) / recent.finals).toFixed(1)}% of the last ${recent.finals} delivery receipts were carrier-filtered (30007/30034; threshold ${(100 * guard.filteredRate).toFixed(1)}%): check the template and the sender's registration before resuming`;
  }
  return undefined;
}

/** Delivery counts of a run: by state, and undelivered/failed by error code. */
export interface DeliveryCounts {
  accepted: number;
  sent: number;
  delivered: number;
  undelivered: number;
  failed: number;
  unknown: number;
  /** Undelivered and failed SMS by Twilio error code, e.g. { "30005": 12 }. */
  byCode: Record<string, number>;
  /** SMS that fell back to email after a delivery receipt. */
  fellBackAfterReceipt: number;
  /** SMS sent a second time after a 30003/30001. */
  retried: number;
}

export function zeroDeliveryCounts(): DeliveryCounts {
  return {
    accepted: 0,
    sent: 0,
    delivered: 0,
    undelivered: 0,
    failed: 0,
    unknown: 0,
    byCode: {},
    fellBackAfterReceipt: 0,
    retried: 0,
  };
}
