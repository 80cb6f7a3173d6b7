// A local, Twilio-compatible Messages API for tests and load runs. Plain node:http, no framework:
// it has to take ~3,000 requests/s on a small box next to the pipeline itself. The real twilio
// client talks to it (see providers/sms.ts), so shapes follow Twilio's 2010-04-01 API.
//
// It reproduces Twilio's documented bad behaviour, each part settable per test (TwilioFaults) and on
// by default in the chaos drill (chaos/run.ts). Sources are in ../shared/REFERENCE.md:
// - The Messages list lags the creates (`listLagMs`): users report messages missing from list
//   results for 10-15 minutes and longer (twilio/twilio-node#647, twilio/twilio-java#442). Fetching
//   one message by SID sees it at once ("the dependable read").
// - `DateSent` filters by GMT date only (YYYY-MM-DD, with < and > variants): a time of day is
//   ignored (twilio.com/docs/messaging/api/message-resource, list filters).
// - Lists come in pages (50 by default) linked by `next_page_uri`.
// - No idempotency key: a create can be processed after the client gave up (`rateSlowAccept`, the
//   message is recorded `slowAcceptMs` after the request arrived, later than the client's timeout)
//   or processed and the connection dropped (`rateDropAfterAccept`) (twilio.com/docs/errors/20500).
// - 429 / 20429 (never processed) and 500/503 on creates, and on list and fetch calls too
//   (`listRate429`, `listRate5xx`) (twilio.com/docs/errors/20429).
// - Link shortening may rewrite links in the body (`rewriteLinks`), so the stored body differs
//   from what was submitted: match on a reference token, never on the whole body.
// - Throughput belongs to a sender (`throughput`): each From number or MessagingServiceSid sends
//   its queue at its own rate (segments/s). Above it Twilio gives no 429: it accepts (`queued`)
//   and queues, so `sent`/`delivered` come only after the queue wait, and a message that would wait
//   longer than the queue bound (Twilio: 10 h, or the ValidityPeriod) fails with 30001 through its
//   status callback (REFERENCE.md, "Twilio as it behaves").
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { listen } from './ports';
import {
  createStatusCallbackEmitter,
  type CallbackBehaviour,
  type StatusCallbackEmitter,
} from './twilio-status-callbacks';

export type LatencySpec = number | [min: number, max: number];

export interface PermanentRule {
  /** E.164 prefix of `To`, e.g. "+1555010". */
  prefix: string;
  /** Twilio error code answered with HTTP 400, e.g. 21211, 21610, 21614, 21635. */
  code: number;
}

export interface TwilioFaults {
  /** Share (0..1) answered 429 / 20429; not recorded. */
  rate429: number;
  /** Share answered 500 or 503; not recorded (rejected before processing). */
  rate5xx: number;
  /** Share recorded and then cut off with no response: the ambiguous case. */
  rateDropAfterAccept: number;
  /** Added before answering: fixed, or uniform in [min, max]. */
  latencyMs: LatencySpec;
  /** Matching `To` gets 400 with the rule's code; first match wins; beats the random faults. */
  permanent: PermanentRule[];
  /** How long after its creation a message shows in list results: fixed, or uniform in [min, max]. */
  listLagMs: LatencySpec;
  /** Share of creates processed only `slowAcceptMs` after they arrived (after the client gave up). */
  rateSlowAccept: number;
  /** Delay of a slow create, before it is recorded and answered. */
  slowAcceptMs: number;
  /** Share of list and fetch requests answered 429 / 20429. */
  listRate429: number;
  /** Share of list and fetch requests answered 500 or 503. */
  listRate5xx: number;
  /** Replace every http(s) link in a body with a short link, as Twilio's link shortening does. */
  rewriteLinks: boolean;
}

export interface SenderThroughput {
  /** Segments/s a sender's queue drains at, unless `perSender` names it; Infinity = no queue. */
  defaultPerSecond: number;
  /** Per sender (From number or MessagingServiceSid), segments/s. */
  perSender: Record<string, number>;
  /** Longest wait in a sender's queue; a message that would wait longer fails with 30001. */
  queueBoundMs: number;
}

/** Twilio's own bound: 10 hours (36,000 s, the longest ValidityPeriod). */
export const TWILIO_QUEUE_BOUND_MS = 36_000_000;

export interface FakeTwilioOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  accountSid: string;
  authToken: string;
  faults?: Partial<TwilioFaults>;
  /** Seed of the fault PRNG, for repeatable fault sequences. */
  seed?: number;
  /** Status callbacks to each message's StatusCallback (stack/twilio-status-callbacks.ts). */
  callbacks?: Partial<CallbackBehaviour>;
  /** Sender queues (default: none, every sender unlimited; the stack and the test harness turn them on). */
  throughput?: Partial<SenderThroughput>;
}

export interface FakeTwilioMessage {
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  statusCallback: string | null;
  numSegments: number;
  encoding: 'GSM-7' | 'UCS-2';
  /** Creation time, truncated to the second like Twilio's RFC 2822 dates. */
  dateCreated: Date;
  /** When the request was accepted, in ms (dateCreated is truncated): for rate measurements. */
  receivedAtMs: number;
  /** Insertion order; page tokens are built on it so paging is stable under concurrent sends. */
  seq: number;
  /** When the message starts to show in list results (list lag). */
  visibleAtMs: number;
  /** When it leaves its sender's queue (= receivedAtMs without a queue); null: it overflowed (30001). */
  departsAtMs: number | null;
}

export interface FakeTwilioStats {
  accepted: number;
  rejected429: number;
  rejected5xx: number;
  dropped: number;
  permanent: number;
  /** List (GET Messages.json) requests served. */
  listed: number;
  /** Fetches of one message by SID served. */
  fetched: number;
  /** List or fetch requests answered 429 or 5xx. */
  lookupFaults: number;
  /** Creates processed after the client's timeout. */
  slowAccepted: number;
  /** 400s for missing parameters. */
  invalid: number;
  unauthorized: number;
  /** Messages that waited in their sender's queue, and the longest wait (ms). */
  queued: number;
  maxQueueWaitMs: number;
  /** Messages failed with 30001: they would have waited longer than the queue bound. */
  queueOverflow: number;
}

export interface FakeTwilio {
  readonly url: string;
  readonly port: number;
  messages(): ReadonlyArray<FakeTwilioMessage>;
  countsByRecipient(): Map<string, number>;
  duplicates(): Array<{ to: string; count: number }>;
  stats(): FakeTwilioStats;
  /** The status callbacks it sends, and the final outcome it decided for each message. */
  readonly callbacks: StatusCallbackEmitter;
  faults(): TwilioFaults;
  setFaults(partial: Partial<TwilioFaults>): TwilioFaults;
  throughput(): SenderThroughput;
  setThroughput(partial: Partial<SenderThroughput>): SenderThroughput;
  /** Forget all records and zero the stats (faults stay). */
  reset(): void;
  stop(): Promise<void>;
}

// ---- SMS segments ------------------------------------------------------------------------------

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** Extension table characters take an escape plus the character: two septets. */
const GSM_EXTENDED = '\f^{}\\[~]|€';
/** Septets per UTF-16 code unit; 0 = not in GSM-7. A flat table keeps the hot path a plain loop. */
const GSM_WIDTH = new Uint8Array(65536);
for (const ch of GSM_BASIC) GSM_WIDTH[ch.charCodeAt(0)] = 1;
for (const ch of GSM_EXTENDED) GSM_WIDTH[ch.charCodeAt(0)] = 2;

/**
 * Segments as Twilio bills them: GSM-7 160 single / 153 per part, otherwise UCS-2 70 / 67
 * (UTF-16 code units, so an emoji counts 2). Ignores the rule that an escape or surrogate pair
 * is never split across parts, which can add a part at exact boundaries.
 */
export function countSegments(body: string): { encoding: 'GSM-7' | 'UCS-2'; segments: number } {
  let septets = 0;
  for (let i = 0; i < body.length; i++) {
    const w = GSM_WIDTH[body.charCodeAt(i)];
    if (w === 0) {
      const units = body.length;
      return { encoding: 'UCS-2', segments: units <= 70 ? 1 : Math.ceil(units / 67) };
    }
    septets += w;
  }
  return { encoding: 'GSM-7', segments: septets <= 160 ? 1 : Math.ceil(septets / 153) };
}

// ---- helpers -----------------------------------------------------------------------------------

/** mulberry32: tiny, fast, seedable; plenty for fault dice. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ERROR_TEXT: Record<number, string> = {
  20003: 'Authenticate',
  20404: 'The requested resource was not found',
  20429: 'Too Many Requests',
  20500: 'An internal server error has occurred',
  20503: 'Service is unavailable. Please try again',
  21211: "The 'To' number is not a valid phone number.",
  21602: 'Message body is required.',
  21603: "A 'From' phone number is required.",
  21604: "A 'To' phone number is required.",
  21610: 'Attempt to send to unsubscribed recipient',
  21614: "'To' number is not a valid mobile number",
  21635: "'To' number cannot be a landline.",
};

/** Twilio's error body. Messages never echo the number or body (unlike the real Twilio). */
function errorJson(status: number, code: number, message = ERROR_TEXT[code] ?? `Error ${code}`): string {
  return JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

let rfcSecond = -1;
let rfcText = '';
/** RFC 2822 like Twilio ("Tue, 04 Nov 2025 10:00:00 +0000"), cached per second for the hot path. */
function rfc2822(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s === rfcSecond) return rfcText;
  const text = new Date(s * 1000).toUTCString().replace('GMT', '+0000');
  rfcSecond = s;
  rfcText = text;
  return text;
}

const DAY_MS = 86_400_000;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Inclusive [lo, hi] bounds (ms) of a DateSent filter. `op` is '' for DateSent=, '>' for
 * DateSent>= (twilio-node's dateSentAfter), '<' for DateSent<=. Accepts YYYY-MM-DD (whole UTC
 * day) or an ISO datetime (twilio-node sends YYYY-MM-DDTHH:mm:ssZ, whole-second precision).
 */
function dateBounds(value: string, op: '' | '>' | '<'): [number, number] | null {
  // Twilio filters by GMT day only: a time of day (twilio-node sends one) is ignored.
  const day = value.slice(0, 10);
  if (!DATE_ONLY.test(day)) return null;
  const lo = Date.parse(`${day}T00:00:00Z`);
  const hi = lo + DAY_MS - 1;
  if (Number.isNaN(lo)) return null;
  if (op === '>') return [lo, Infinity];
  if (op === '<') return [-Infinity, hi];
  return [lo, hi];
}

function validateFaults(f: TwilioFaults): void {
  for (const k of [
    'rate429',
    'rate5xx',
    'rateDropAfterAccept',
    'rateSlowAccept',
    'listRate429',
    'listRate5xx',
  ] as const) {
    const v = f[k];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`fault ${k} must be a number in 0..1`);
  }
  const l = f.latencyMs;
  const ok = typeof l === 'number' ? l >= 0 : Array.isArray(l) && l.length === 2 && l[0] >= 0 && l[1] >= l[0];
  if (!ok) throw new Error('fault latencyMs must be >= 0 or [min, max]');
  const g = f.listLagMs;
  const lagOk = typeof g === 'number' ? g >= 0 : Array.isArray(g) && g.length === 2 && g[0] >= 0 && g[1] >= g[0];
  if (!lagOk) throw new Error('fault listLagMs must be >= 0 or [min, max]');
  if (typeof f.slowAcceptMs !== 'number' || !(f.slowAcceptMs >= 0)) throw new Error('fault slowAcceptMs must be >= 0');
  if (typeof f.rewriteLinks !== 'boolean') throw new Error('fault rewriteLinks must be true or false');
  if (
    !Array.isArray(f.permanent) ||
    !f.permanent.every((r) => typeof r.prefix === 'string' && Number.isInteger(r.code))
  ) {
    throw new Error('fault permanent must be an array of { prefix, code }');
  }
}

function validateThroughput(t: SenderThroughput): void {
  const rate = (v: unknown, name: string) => {
    if (typeof v !== 'number' || !(v > 0))
      throw new Error(`throughput ${name} must be a number > 0 (Infinity: no queue)`);
  };
  rate(t.defaultPerSecond, 'defaultPerSecond');
  if (!t.perSender || typeof t.perSender !== 'object')
    throw new Error('throughput perSender must be an object of sender -> segments/s');
  for (const [k, v] of Object.entries(t.perSender)) rate(v, `of ${k}`);
  if (typeof t.queueBoundMs !== 'number' || !(t.queueBoundMs >= 0))
    throw new Error('throughput queueBoundMs must be >= 0');
}

function zeroStats(): FakeTwilioStats {
  return {
    accepted: 0,
    rejected429: 0,
    rejected5xx: 0,
    dropped: 0,
    permanent: 0,
    listed: 0,
    fetched: 0,
    lookupFaults: 0,
    slowAccepted: 0,
    invalid: 0,
    unauthorized: 0,
    queued: 0,
    maxQueueWaitMs: 0,
    queueOverflow: 0,
  };
}

/** Index of the first element with seq >= target (arrays are in seq order). */
function lowerBound(arr: ReadonlyArray<FakeTwilioMessage>, target: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid].seq < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- server ------------------------------------------------------------------------------------

export async function startFakeTwilio(opts: FakeTwilioOptions): Promise<FakeTwilio> {
  const { accountSid, authToken } = opts;
  const expectedAuth = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
  const accountPath = `/2010-04-01/Accounts/${accountSid}`;
  const messagesPath = `${accountPath}/Messages.json`;
  const messagePrefix = `${accountPath}/Messages/`;

  let faults: TwilioFaults = {
    rate429: 0,
    rate5xx: 0,
    rateDropAfterAccept: 0,
    latencyMs: 0,
    permanent: [],
    listLagMs: 0,
    rateSlowAccept: 0,
    slowAcceptMs: 12_000,
    listRate429: 0,
    listRate5xx: 0,
    rewriteLinks: false,
    ...opts.faults,
  };
  validateFaults(faults);
  let throughput: SenderThroughput = {
    defaultPerSecond: Infinity,
    perSender: {},
    queueBoundMs: TWILIO_QUEUE_BOUND_MS,
    ...opts.throughput,
  };
  validateThroughput(throughput);
  /** Per sender: when its queue is next free (ms). */
  let queueFreeAt = new Map<string, number>();
  const random = prng(opts.seed ?? 0x5eed);

  let all: FakeTwilioMessage[] = [];
  let byTo = new Map<string, FakeTwilioMessage[]>();
  let bySid = new Map<string, FakeTwilioMessage>();
  let stats = zeroStats();
  // Unique, cheap SIDs: a random per-server prefix plus a counter (no crypto call per request).
  const sidPrefix = 'SM' + randomBytes(8).toString('hex');
  let sidCounter = 0;
  // Identical bodies (a template) share one string instead of one copy per message.
  const interned = new Map<string, string>();
  const intern = (s: string): string => {
    const hit = interned.get(s);
    if (hit !== undefined) return hit;
    if (interned.size < 10_000) interned.set(s, s);
    return s;
  };
  const timers = new Set<NodeJS.Timeout>();
  const callbacks = createStatusCallbackEmitter({
    accountSid,
    authToken,
    random: prng((opts.seed ?? 0x5eed) + 1),
    behaviour: opts.callbacks,
  });

  function sample(l: LatencySpec): number {
    if (typeof l === 'number') return l;
    return l[0] + random() * (l[1] - l[0]);
  }
  const latency = (): number => sample(faults.latencyMs);

  /** A 429 or 5xx for a list or fetch request, or null. One die per request. */
  function lookupFault(res: http.ServerResponse): boolean {
    if (faults.listRate429 <= 0 && faults.listRate5xx <= 0) return false;
    const r = random();
    if (r < faults.listRate429) {
      stats.lookupFaults++;
      later(() => send(res, 429, errorJson(429, 20429)));
      return true;
    }
    if (r < faults.listRate429 + faults.listRate5xx) {
      stats.lookupFaults++;
      const status = random() < 0.5 ? 500 : 503;
      later(() => send(res, status, errorJson(status, status === 500 ? 20500 : 20503)));
      return true;
    }
    return false;
  }

  let shortLinks = 0;
  const shorten = (body: string): string =>
    body.replace(/https?:\/\/\S+/g, () => `https://twil.io/s${(shortLinks++).toString(36)}`);

  /** Runs `fn` after the configured latency (synchronously when there is none). */
  function later(fn: () => void): void {
    const ms = latency();
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  }

  function send(res: http.ServerResponse, status: number, json: string): void {
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(json),
    });
    res.end(json);
  }

  function messageJson(m: FakeTwilioMessage, fresh = false): Record<string, unknown> {
    const date = rfc2822(m.dateCreated.getTime());
    // A fetch or list shows the message as it is now (queued, sent, delivered, failed 30001, ...).
    const now = fresh ? undefined : callbacks.statusOf(m.sid);
    return {
      account_sid: accountSid,
      api_version: '2010-04-01',
      body: m.body,
      date_created: date,
      date_sent: date,
      date_updated: date,
      direction: 'outbound-api',
      error_code: now?.code ? Number(now.code) : null,
      error_message: null,
      from: m.from,
      messaging_service_sid: m.messagingServiceSid,
      num_media: '0',
      num_segments: String(m.numSegments),
      price: null,
      price_unit: 'USD',
      sid: m.sid,
      status: now?.status ?? 'queued',
      subresource_uris: { media: `${messagePrefix}${m.sid}/Media.json` },
      to: m.to,
      uri: `${messagePrefix}${m.sid}.json`,
    };
  }

  function create(form: URLSearchParams, res: http.ServerResponse): void {
    const to = form.get('To');
    const body = form.get('Body');
    const from = form.get('From');
    const mss = form.get('MessagingServiceSid');
    if (!to || !body || (!from && !mss)) {
      stats.invalid++;
      const code = !to ? 21604 : !body ? 21602 : 21603;
      return later(() => send(res, 400, errorJson(400, code)));
    }
    for (const rule of faults.permanent) {
      if (to.startsWith(rule.prefix)) {
        stats.permanent++;
        return later(() => send(res, 400, errorJson(400, rule.code)));
      }
    }
    // One die per request decides the random fault, so a seed gives a repeatable sequence.
    const r = random();
    if (r < faults.rate429) {
      stats.rejected429++;
      return later(() => send(res, 429, errorJson(429, 20429)));
    }
    if (r < faults.rate429 + faults.rate5xx) {
      stats.rejected5xx++;
      const status = random() < 0.5 ? 500 : 503;
      return later(() => send(res, status, errorJson(status, status === 500 ? 20500 : 20503)));
    }
    if (r < faults.rate429 + faults.rate5xx + faults.rateSlowAccept) {
      // Slow processing: recorded (and answered) only after the client has given up waiting.
      stats.slowAccepted++;
      const t = setTimeout(() => {
        timers.delete(t);
        const m = record(form, to, body, from, mss);
        if (!res.destroyed) send(res, 201, JSON.stringify(messageJson(m, true)));
      }, faults.slowAcceptMs);
      timers.add(t);
      return;
    }
    const m = record(form, to, body, from, mss);
    if (r < faults.rate429 + faults.rate5xx + faults.rateSlowAccept + faults.rateDropAfterAccept) {
      stats.dropped++;
      // Processed, but the caller never learns it: no status line, the connection just dies.
      return later(() => res.socket?.destroy());
    }
    later(() => send(res, 201, JSON.stringify(messageJson(m, true))));
  }

  /** Its place in the sender's queue: when it departs, or null when that is past the queue bound. */
  function enqueue(sender: string, segments: number, now: number): number | null {
    const rate = throughput.perSender[sender] ?? throughput.defaultPerSecond;
    if (rate === Infinity) return now;
    const departs = Math.max(now, queueFreeAt.get(sender) ?? 0);
    if (departs - now > throughput.queueBoundMs) {
      stats.queueOverflow++;
      return null;
    }
    // Segments, not messages, count against throughput.
    queueFreeAt.set(sender, departs + (segments * 1000) / rate);
    if (departs > now) {
      stats.queued++;
      stats.maxQueueWaitMs = Math.max(stats.maxQueueWaitMs, departs - now);
    }
    return departs;
  }

  function record(
    form: URLSearchParams,
    to: string,
    submitted: string,
    from: string | null,
    mss: string | null,
  ): FakeTwilioMessage {
    const body = faults.rewriteLinks ? shorten(submitted) : submitted;
    const { encoding, segments } = countSegments(body);
    const now = Date.now();
    const m: FakeTwilioMessage = {
      sid: sidPrefix + (sidCounter++).toString(16).padStart(16, '0'),
      to,
      from: from ? intern(from) : null,
      messagingServiceSid: mss ? intern(mss) : null,
      body: intern(body),
      statusCallback: form.get('StatusCallback'),
      numSegments: segments,
      encoding,
      dateCreated: new Date(now - (now % 1000)),
      receivedAtMs: now,
      seq: all.length,
      visibleAtMs: now + sample(faults.listLagMs),
      departsAtMs: enqueue(mss ?? from ?? '', segments, now),
    };
    all.push(m);
    bySid.set(m.sid, m);
    const list = byTo.get(to);
    if (list) list.push(m);
    else byTo.set(to, [m]);
    stats.accepted++;
    // Processed, so Twilio reports on it, whether or not the caller hears of it.
    callbacks.created(m);
    return m;
  }

  function list(query: URLSearchParams, res: http.ServerResponse): void {
    if (lookupFault(res)) return;
    stats.listed++;
    const now = Date.now();
    const to = query.get('To');
    const from = query.get('From');
    let lo = -Infinity;
    let hi = Infinity;
    for (const [key, op] of [
      ['DateSent', ''],
      ['DateSent>', '>'],
      ['DateSent<', '<'],
    ] as const) {
      const v = query.get(key);
      if (v === null) continue;
      const b = dateBounds(v, op);
      if (!b) return send(res, 400, errorJson(400, 20001, `Invalid ${key} value`));
      lo = Math.max(lo, b[0]);
      hi = Math.min(hi, b[1]);
    }
    const pageSize = Math.min(1000, Math.max(1, Number.parseInt(query.get('PageSize') ?? '50', 10) || 50));
    const pageNo = Math.max(0, Number.parseInt(query.get('Page') ?? '0', 10) || 0);
    const token = query.get('PageToken') ?? '';

    const source = to !== null ? (byTo.get(to) ?? []) : all;
    const matches = (m: FakeTwilioMessage): boolean => {
      const t = m.dateCreated.getTime();
      return t >= lo && t <= hi && m.visibleAtMs <= now && (from === null || m.from === from);
    };
    // Newest first, like Twilio. "PA<seq>" = older than seq (next), "PB<seq>" = newer (previous).
    const page: FakeTwilioMessage[] = [];
    let more = false;
    if (token.startsWith('PB')) {
      for (let i = lowerBound(source, Number(token.slice(2)) + 1); i < source.length; i++) {
        if (!matches(source[i])) continue;
        if (page.length === pageSize) break;
        page.push(source[i]);
      }
      page.reverse();
      more = true; // we came from a newer page, so an older one exists
    } else {
      const below = token.startsWith('PA') ? Number(token.slice(2)) : Infinity;
      for (let i = (below === Infinity ? source.length : lowerBound(source, below)) - 1; i >= 0; i--) {
        if (!matches(source[i])) continue;
        if (page.length === pageSize) {
          more = true;
          break;
        }
        page.push(source[i]);
      }
    }

    const base = new URLSearchParams();
    for (const k of ['To', 'From', 'DateSent', 'DateSent>', 'DateSent<']) {
      const v = query.get(k);
      if (v !== null) base.set(k, v);
    }
    base.set('PageSize', String(pageSize));
    const uriFor = (n: number, tok?: string): string => {
      const q = new URLSearchParams(base);
      q.set('Page', String(n));
      if (tok) q.set('PageToken', tok);
      return `${messagesPath}?${q}`;
    };
    const start = pageNo * pageSize;
    const json = {
      messages: page.map((m) => messageJson(m)),
      uri: uriFor(pageNo, token || undefined),
      first_page_uri: uriFor(0),
      next_page_uri: more && page.length > 0 ? uriFor(pageNo + 1, `PA${page[page.length - 1].seq}`) : null,
      previous_page_uri: pageNo > 0 && page.length > 0 ? uriFor(pageNo - 1, `PB${page[0].seq}`) : null,
      page: pageNo,
      page_size: pageSize,
      start,
      end: start + Math.max(page.length - 1, 0),
    };
    later(() => send(res, 200, JSON.stringify(json)));
  }

  function control(req: http.IncomingMessage, path: string, raw: string, res: http.ServerResponse): void {
    const ok = (v: unknown): void => send(res, 200, JSON.stringify(v));
    if (path === '/__control/faults' && req.method === 'POST') {
      try {
        return ok(api.setFaults(JSON.parse(raw || '{}') as Partial<TwilioFaults>));
      } catch (e) {
        return send(res, 400, JSON.stringify({ error: (e as Error).message }));
      }
    }
    if (path === '/__control/faults' && req.method === 'GET') return ok(faults);
    if (path === '/__control/throughput' && req.method === 'POST') {
      try {
        return ok(api.setThroughput(JSON.parse(raw || '{}') as Partial<SenderThroughput>));
      } catch (e) {
        return send(res, 400, JSON.stringify({ error: (e as Error).message }));
      }
    }
    if (path === '/__control/throughput' && req.method === 'GET') return ok(throughput);
    if (path === '/__control/stats' && req.method === 'GET') return ok(stats);
    if (path === '/__control/duplicates' && req.method === 'GET') return ok(api.duplicates());
    if (path === '/__control/reset' && req.method === 'POST') {
      api.reset();
      return ok({ ok: true });
    }
    send(res, 404, JSON.stringify({ error: 'unknown control endpoint' }));
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path.startsWith('/__control/')) return control(req, path, raw, res);

    if (req.headers.authorization !== expectedAuth || !path.startsWith(accountPath + '/')) {
      stats.unauthorized++;
      return later(() => send(res, 401, errorJson(401, 20003)));
    }
    if (path === messagesPath) {
      if (req.method === 'POST') return create(new URLSearchParams(raw), res);
      if (req.method === 'GET') return list(new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), res);
    } else if (req.method === 'GET' && path.startsWith(messagePrefix) && path.endsWith('.json')) {
      if (lookupFault(res)) return;
      const m = bySid.get(path.slice(messagePrefix.length, -'.json'.length));
      stats.fetched++;
      if (m) return later(() => send(res, 200, JSON.stringify(messageJson(m))));
    }
    later(() => send(res, 404, errorJson(404, 20404)));
  }

  const server = http.createServer({ noDelay: true }, (req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      // No body expected; resume() so keep-alive parsing moves on.
      req.resume();
      return handle(req, res, '');
    }
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => handle(req, res, raw));
  });
  // Outlive the client's idle keep-alive sockets, so the client never reuses a socket we are closing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const { port, host } = await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');

  const api: FakeTwilio = {
    url: `http://${host}:${port}`,
    port,
    messages: () => all,
    countsByRecipient() {
      const counts = new Map<string, number>();
      for (const [to, ms] of byTo) counts.set(to, ms.length);
      return counts;
    },
    duplicates() {
      const out: Array<{ to: string; count: number }> = [];
      for (const [to, ms] of byTo) if (ms.length > 1) out.push({ to, count: ms.length });
      return out;
    },
    stats: () => ({ ...stats }),
    callbacks,
    faults: () => structuredClone(faults),
    setFaults(partial) {
      const next = { ...faults, ...partial };
      validateFaults(next);
      faults = next;
      return structuredClone(faults);
    },
    throughput: () => structuredClone(throughput),
    setThroughput(partial) {
      const next = { ...throughput, ...partial };
      validateThroughput(next);
      throughput = next;
      return structuredClone(throughput);
    },
    reset() {
      all = [];
      byTo = new Map();
      bySid = new Map();
      queueFreeAt = new Map();
      stats = zeroStats();
      callbacks.reset();
    },
    stop() {
      callbacks.stop();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return api;
}

// Standalone: `npx tsx stack/fake-twilio.ts` (env FAKE_TWILIO_PORT, TWILIO_ACCOUNT_SID,
// TWILIO_AUTH_TOKEN, FAKE_TWILIO_SEED). Steer it over /__control/*.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const fake = await startFakeTwilio({
    port: Number(process.env.FAKE_TWILIO_PORT ?? 0),
    host: process.env.FAKE_TWILIO_HOST ?? '127.0.0.1',
    accountSid: process.env.TWILIO_ACCOUNT_SID ?? 'AC00000000000000000000000000000000',
    authToken: process.env.TWILIO_AUTH_TOKEN ?? 'test-token',
    seed: process.env.FAKE_TWILIO_SEED ? Number(process.env.FAKE_TWILIO_SEED) : undefined,
  });
  console.log(JSON.stringify({ fakeTwilio: fake.url }));
  const shutdown = (): void => void fake.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
