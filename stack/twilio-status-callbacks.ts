// Status callbacks of the local Twilio server, as Twilio sends them: after a message is created,
// `sent` and then a final `delivered` / `undelivered` / `failed` (with ErrorCode) are POSTed to
// its StatusCallback URL, signed with the auth token (X-Twilio-Signature over the URL without its
// #fragment plus the sorted form parameters), after configurable delays, with a configurable mix
// of outcomes, sometimes out of order or twice, and retried on failure only as far as the URL's
// connection-override fragment asks (#rc= count, #rp= policy, #tt= total time).
import http from 'node:http';
import https from 'node:https';
import twilio from 'twilio';

export type DelaySpec = number | [min: number, max: number];

/** Final outcomes: 'delivered', or '<undelivered|failed>:<code>', e.g. 'undelivered:30005'. */
export type OutcomeKey = string;

export interface OutcomeRule {
  /** E.164 prefix of `To`. */
  prefix: string;
  /** Outcome of matching messages, e.g. 'undelivered:30003'. */
  outcome: OutcomeKey;
  /** Only the first N messages to each matching number (then the mix): a handset that comes back. */
  times?: number;
}

export interface CallbackBehaviour {
  /** Delay from create to the `sent` callback, ms. */
  sentDelayMs: DelaySpec;
  /** Delay from `sent` to the final callback, ms. */
  finalDelayMs: DelaySpec;
  /** Share of each final outcome; the rest of 1 is 'delivered'. */
  mix: Record<OutcomeKey, number>;
  /** Share of messages whose final callback is sent before `sent`. */
  outOfOrder: number;
  /** Share of messages whose final callback is sent twice. */
  duplicate: number;
  /** Deterministic outcomes by recipient prefix; first match wins; beats the mix. */
  rules: OutcomeRule[];
  /** Pause between retries of a failed callback, ms. */
  retryDelayMs: number;
}

interface Due {
  at: number;
  fn: () => void;
}
/** A heap entry: `seq` is the insertion order, so of two callbacks due at the same millisecond the first scheduled goes first. */
type Entry = Due & { seq: number };
const before = (x: Entry, y: Entry) => x.at < y.at || (x.at === y.at && x.seq < y.seq);

/** Scheduled callbacks, earliest first (a binary min-heap by `at`, then insertion order). */
class DueHeap {
  private items: Entry[] = [];
  private seq = 0;
  push(item: Due): void {
    const a = this.items;
    a.push({ ...item, seq: this.seq++ });
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  nextAt(): number | undefined {
    return this.items[0]?.at;
  }
  /** The earliest item if it is due by `now`, removed; else undefined. */
  popDue(now: number): Entry | undefined {
    const a = this.items;
    if (a.length === 0 || a[0].at > now) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

/** First in, first out, O(1) both ways (Array#shift copies the array once it is large). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/** A realistic mix: 95% delivered, the rest spread over the common delivery errors. */
export const REALISTIC_MIX: Record<OutcomeKey, number> = {
  'undelivered:30003': 0.01,
  'undelivered:30005': 0.01,
  'undelivered:30006': 0.01,
  'undelivered:30007': 0.01,
  'undelivered:30008': 0.01,
};

export const DEFAULT_BEHAVIOUR: CallbackBehaviour = {
  sentDelayMs: [50, 300],
  finalDelayMs: [200, 2000],
  mix: REALISTIC_MIX,
  outOfOrder: 0.02,
  duplicate: 0.02,
  rules: [],
  retryDelayMs: 500,
};

export interface CallbackStats {
  /** Callback requests made (retries included). */
  attempts: number;
  /** Answered 2xx. */
  acknowledged: number;
  /** Failed attempts (network error or non-2xx). */
  failedAttempts: number;
  /** Callbacks given up after the retries the URL allowed. */
  abandoned: number;
  /** Callbacks still scheduled or in flight. */
  pending: number;
}

export interface MessageForCallbacks {
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  statusCallback: string | null;
  /** When Twilio accepted it, and when it leaves its sender's queue (null: the queue overflowed, 30001). */
  receivedAtMs?: number;
  departsAtMs?: number | null;
}

/** A message its sender's queue could not hold: failed, never sent (no `sent` callback). */
export const QUEUE_OVERFLOW_OUTCOME: OutcomeKey = 'failed:30001';

export interface StatusCallbackEmitter {
  /** Called by the server when it created a message. */
  created(m: MessageForCallbacks): void;
  /** Final outcome decided for each message: the server's own record, to compare a run with. */
  outcomes(): ReadonlyMap<string, { status: string; code: string | null; to: string }>;
  /** Final outcomes counted: 'delivered', 'undelivered:30005', ... */
  outcomeCounts(): Record<OutcomeKey, number>;
  /** Current status of a message as a fetch would show it. */
  statusOf(sid: string): { status: string; code: string | null } | undefined;
  stats(): CallbackStats;
  behaviour(): CallbackBehaviour;
  setBehaviour(partial: Partial<CallbackBehaviour>): CallbackBehaviour;
  /** Resolves when nothing is scheduled or in flight. */
  idle(timeoutMs?: number): Promise<void>;
  reset(): void;
  stop(): void;
}

interface Override {
  retries: number;
  policy: Set<string>;
  totalMs: number;
}

/** Twilio's connection overrides from the URL fragment (defaults: no retries, 15 s in total). */
export function parseOverrides(url: string): { url: string; override: Override } {
  const hash = url.indexOf('#');
  const override: Override = { retries: 0, policy: new Set(['ct']), totalMs: 15_000 };
  if (hash < 0) return { url, override };
  const frag = new URLSearchParams(url.slice(hash + 1));
  const rc = Number(frag.get('rc'));
  if (Number.isInteger(rc) && rc >= 0) override.retries = Math.min(5, rc);
  const rp = frag.get('rp');
  if (rp) override.policy = new Set(rp.split(','));
  const tt = Number(frag.get('tt'));
  if (Number.isInteger(tt) && tt >= 100) override.totalMs = Math.min(15_000, tt);
  return { url: url.slice(0, hash), override };
}

function validateBehaviour(b: CallbackBehaviour): void {
  const share = (v: unknown, name: string) => {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${name} must be a number in 0..1`);
  };
  share(b.outOfOrder, 'outOfOrder');
  share(b.duplicate, 'duplicate');
  let total = 0;
  for (const [k, v] of Object.entries(b.mix)) {
    if (!/^(undelivered|failed):\d{5}$/.test(k) && k !== 'delivered')
      throw new Error(`mix key ${k} must be 'delivered' or '<undelivered|failed>:<code>'`);
    share(v, `mix ${k}`);
    total += v;
  }
  if (total > 1 + 1e-9) throw new Error('mix shares add up to more than 1');
  for (const d of [b.sentDelayMs, b.finalDelayMs]) {
    const ok = typeof d === 'number' ? d >= 0 : Array.isArray(d) && d.length === 2 && d[0] >= 0 && d[1] >= d[0];
    if (!ok) throw new Error('delays must be >= 0 or [min, max]');
  }
}

export function createStatusCallbackEmitter(opts: {
  accountSid: string;
  authToken: string;
  random: () => number;
  behaviour?: Partial<CallbackBehaviour>;
  /** Callback requests in flight at once. */
  concurrency?: number;
}): StatusCallbackEmitter {
  let behaviour: CallbackBehaviour = { ...DEFAULT_BEHAVIOUR, ...opts.behaviour };
  validateBehaviour(behaviour);
  const random = opts.random;
  // Twilio calls a webhook over many connections at once; the limit is this double's, not Twilio's.
  const limit = opts.concurrency ?? 256;
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: limit }),
    https: new https.Agent({ keepAlive: true, maxSockets: limit }),
  };
  let outcomes = new Map<string, { status: string; code: string | null; to: string }>();
  let current = new Map<string, { status: string; code: string | null }>();
  let perNumber = new Map<string, number>();
  let stats: CallbackStats = { attempts: 0, acknowledged: 0, failedAttempts: 0, abandoned: 0, pending: 0 };
  // One timer for everything: 850,000 messages schedule ~2 million callbacks. A min-heap by due
  // time, and a queue with a moving head for requests over the concurrency limit: filtering an
  // array of every pending callback each tick, and Array#shift on a backlog of tens of thousands,
  // made this double's CPU grow with its backlog until it, not the pipeline, set the pace.
  let due = new DueHeap();
  let timer: NodeJS.Timeout | null = null;
  let inFlight = 0;
  const waiting = new Fifo<() => void>();
  let generation = 0;

  const delay = (d: DelaySpec) => (typeof d === 'number' ? d : d[0] + random() * (d[1] - d[0]));

  function tick(): void {
    timer = null;
    const now = Date.now();
    for (let d = due.popDue(now); d; d = due.popDue(now)) d.fn();
    arm();
  }
  function arm(): void {
    const next = due.nextAt();
    if (timer || next === undefined) return;
    timer = setTimeout(tick, Math.max(1, Math.min(50, next - Date.now())));
  }
  function at(ms: number, fn: () => void): void {
    stats.pending++;
    due.push({
      at: Date.now() + ms,
      fn: () => {
        stats.pending--;
        fn();
      },
    });
    arm();
  }

  function chooseOutcome(to: string): OutcomeKey {
    for (const rule of behaviour.rules) {
      if (!to.startsWith(rule.prefix)) continue;
      const seen = perNumber.get(to) ?? 0;
      perNumber.set(to, seen + 1);
      if (rule.times === undefined || seen < rule.times) return rule.outcome;
      break;
    }
    let r = random();
    for (const [k, share] of Object.entries(behaviour.mix)) {
      if (r < share) return k;
      r -= share;
    }
    return 'delivered';
  }

  function post(target: string, params: Record<string, string>, attempt: number, startedAt: number, gen: number): void {
    if (gen !== generation) return;
    const { url, override } = parseOverrides(target);
    const signature = twilio.getExpectedTwilioSignature(opts.authToken, url, params);
    const body = new URLSearchParams(params).toString();
    const run = () => {
      inFlight++;
      stats.pending++;
      stats.attempts++;
      const u = new URL(url);
      const lib = u.protocol === 'https:' ? https : http;
      let settled = false;
      const finish = (failure: 'ct' | 'rt' | '4xx' | '5xx' | null) => {
        if (settled) return;
        settled = true;
        inFlight--;
        const next = waiting.shift();
        if (next) next();
        if (gen !== generation) return;
        stats.pending--;
        if (failure === null) {
          stats.acknowledged++;
          return;
        }
        stats.failedAttempts++;
        const retryable = override.policy.has('all') || override.policy.has(failure);
        const wait = behaviour.retryDelayMs * attempt;
        if (retryable && attempt <= override.retries && Date.now() + wait - startedAt <= override.totalMs) {
          at(wait, () => post(target, params, attempt + 1, startedAt, gen));
        } else {
          stats.abandoned++;
        }
      };
      const req = lib.request(
        u,
        {
          method: 'POST',
          agent: u.protocol === 'https:' ? agents.https : agents.http,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'content-length': Buffer.byteLength(body),
            'x-twilio-signature': signature,
            'user-agent': 'TwilioProxy/1.1',
          },
          timeout: 15_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const s = res.statusCode ?? 0;
            finish(s >= 200 && s < 300 ? null : s >= 500 ? '5xx' : '4xx');
          });
          res.on('error', () => finish('rt'));
        },
      );
      req.on('timeout', () => req.destroy(new Error('read timeout')));
      req.on('error', (e: NodeJS.ErrnoException) =>
        finish(e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' ? 'ct' : 'rt'),
      );
      req.end(body);
    };
    if (inFlight < limit) run();
    else waiting.push(run);
  }

  return {
    created(m) {
      if (!m.statusCallback) return;
      const overflow = m.departsAtMs === null;
      const key = overflow ? QUEUE_OVERFLOW_OUTCOME : chooseOutcome(m.to);
      const [status, code] = key === 'delivered' ? ['delivered', null] : (key.split(':') as [string, string]);
      outcomes.set(m.sid, { status, code, to: m.to });
      current.set(m.sid, { status: 'queued', code: null });
      const base: Record<string, string> = {
        AccountSid: opts.accountSid,
        ApiVersion: '2010-04-01',
        MessageSid: m.sid,
        SmsSid: m.sid,
        To: m.to,
        ...(m.from ? { From: m.from } : {}),
        ...(m.messagingServiceSid ? { MessagingServiceSid: m.messagingServiceSid } : {}),
      };
      const sentParams = { ...base, MessageStatus: 'sent', SmsStatus: 'sent' };
      const finalParams: Record<string, string> = {
        ...base,
        MessageStatus: status,
        SmsStatus: status,
        ...(code ? { ErrorCode: code } : {}),
        RawDlrDoneDate: new Date().toISOString().replace(/\D/g, '').slice(2, 12),
      };
      const target = m.statusCallback;
      const gen = generation;
      if (overflow) {
        // Never left Twilio: one final `failed` callback, no `sent`.
        const failAt = delay(behaviour.sentDelayMs);
        at(failAt, () => {
          current.set(m.sid, { status, code });
          post(target, finalParams, 1, Date.now(), gen);
        });
        if (random() < behaviour.duplicate) at(failAt + 20, () => post(target, finalParams, 1, Date.now(), gen));
        return;
      }
      // Nothing is sent before the message leaves its sender's queue.
      const queueWait =
        m.departsAtMs != null && m.receivedAtMs !== undefined ? Math.max(0, m.departsAtMs - m.receivedAtMs) : 0;
      const sentAt = queueWait + delay(behaviour.sentDelayMs);
      const finalAt = sentAt + delay(behaviour.finalDelayMs);
      const swapped = random() < behaviour.outOfOrder;
      const twice = random() < behaviour.duplicate;
      at(swapped ? finalAt : sentAt, () => {
        if (!swapped) current.set(m.sid, { status: 'sent', code: null });
        post(target, swapped ? finalParams : sentParams, 1, Date.now(), gen);
      });
      at(swapped ? finalAt + 5 : finalAt, () => {
        current.set(m.sid, { status, code });
        post(target, swapped ? sentParams : finalParams, 1, Date.now(), gen);
      });
      if (twice) at(finalAt + 20, () => post(target, finalParams, 1, Date.now(), gen));
    },
    outcomes: () => outcomes,
    outcomeCounts() {
      const counts: Record<string, number> = {};
      for (const o of outcomes.values()) {
        const k = o.code ? `${o.status}:${o.code}` : o.status;
        counts[k] = (counts[k] ?? 0) + 1;
      }
      return counts;
    },
    statusOf: (sid) => current.get(sid),
    stats: () => ({ ...stats }),
    behaviour: () => structuredClone(behaviour),
    setBehaviour(partial) {
      const next = { ...behaviour, ...partial };
      validateBehaviour(next);
      behaviour = next;
      return structuredClone(behaviour);
    },
    async idle(timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      while (stats.pending > 0) {
        if (Date.now() > end)
          throw new Error(`status callbacks still pending after ${timeoutMs} ms: ${JSON.stringify(stats)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    reset() {
      generation++;
      due = new DueHeap();
      outcomes = new Map();
      current = new Map();
      perNumber = new Map();
      stats = { attempts: 0, acknowledged: 0, failedAttempts: 0, abandoned: 0, pending: 0 };
    },
    stop() {
      generation++;
      if (timer) clearTimeout(timer);
      timer = null;
      due = new DueHeap();
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
