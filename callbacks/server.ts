// The status-callback receiver: Twilio's message status callbacks (and the email relay's signed
// bounce webhook) in, receipts in PostgreSQL out. Stateless, so any number of replicas can sit
// behind one public URL.
//
// - Every Twilio callback is checked with twilio's own validateRequest against the public URL it
//   was sent to (PUBLIC_CALLBACK_URL plus the request's query): a missing, wrong or tampered
//   signature gets 403 and changes nothing. Bodies over the limit get 413 before being read.
// - Receipts are written in small groups (one statement for whatever arrived within a few ms), so
//   the receiver answers in milliseconds at thousands of callbacks per second.
// - While PostgreSQL is unreachable it answers 503; the callback URL asks Twilio to retry
//   (domain/delivery.ts CALLBACK_RETRY_FRAGMENT), and the follow-up fetches what never came.
import http from 'node:http';
import twilio from 'twilio';
import type { Db } from '../db/pool';
import { recordStatusCallbacks } from '../db/sql/record-status-callbacks';
import { recordEmailBounces } from '../db/sql/record-email-bounces';
import { parseStatusCallback, type StatusCallback } from '../domain/delivery';
import { parseSendGridEvents, verifySendGridSignature } from './sendgrid-webhook';
import { Counter, Histogram, renderGauges } from '../workers/metrics';
import { listen } from '../workers/listen';

export interface CallbackServerOptions {
  db: Db;
  /** The Twilio auth token that signs the callbacks. */
  authToken: string;
  /** The public URL of the status endpoint, as given to Twilio (without run/ref query). */
  publicUrl: string;
  port?: number;
  host?: string;
  /** Largest accepted body, bytes. Twilio's status callbacks are well under 2 KB. */
  maxBodyBytes?: number;
  /** SendGrid Event Webhook verification key (base64 DER, from SendGrid's settings); unset = route off. */
  sendgridPublicKey?: string;
  /** Group receipts arriving within this many ms into one statement. */
  batchMs?: number;
}

export interface CallbackServer {
  url: string;
  port: number;
  metrics(): string;
  close(): Promise<void>;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const MAX_GROUP = 500;

/** Collects receipts and writes each group in one statement; each caller learns its group's fate. */
class ReceiptWriter {
  private queue: { cb: StatusCallback; done: (err: Error | null, changed?: boolean) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing = 0;

  constructor(
    private readonly db: Db,
    private readonly batchMs: number,
  ) {}

  /** Resolves true when the receipt changed (false: a repeat or a late lower-ranked status). */
  write(cb: StatusCallback): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ cb, done: (err, changed) => (err ? reject(err) : resolve(changed ?? false)) });
      if (this.queue.length >= MAX_GROUP) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.batchMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const group = this.queue;
    this.queue = [];
    if (group.length === 0) return;
    this.writing++;
    recordStatusCallbacks(
      this.db,
      group.map((g) => g.cb),
    )
      .then(
        (changed) => {
          // Within a group only the highest-ranked callback of a SID counts as the change.
          const credited = new Set<string>();
          const best = new Map<string, StatusCallback>();
          for (const g of group) {
            const b = best.get(g.cb.messageSid);
            if (!b || g.cb.rank > b.rank) best.set(g.cb.messageSid, g.cb);
          }
          for (const g of group) {
            const sid = g.cb.messageSid;
            const isChange = changed.has(sid) && best.get(sid) === g.cb && !credited.has(sid);
            if (isChange) credited.add(sid);
            g.done(null, isChange);
          }
        },
        (err: Error) => group.forEach((g) => g.done(err)),
      )
      .finally(() => this.writing--);
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      if (!over) chunks.push(c);
    });
    req.on('end', () => resolve(over ? 'too_large' : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startCallbackServer(o: CallbackServerOptions): Promise<CallbackServer> {
  const publicUrl = new URL(o.publicUrl);
  if (publicUrl.search || publicUrl.hash) throw new Error('PUBLIC_CALLBACK_URL must have no query or #fragment');
  const statusPath = publicUrl.pathname;
  const signedBase = `${publicUrl.origin}${publicUrl.pathname}`;
  const emailPath = statusPath.replace(/\/[^/]*$/, '') + '/email-events';
  const limit = o.maxBodyBytes ?? 16 * 1024;
  const writer = new ReceiptWriter(o.db, o.batchMs ?? 2);

  const requests = new Counter(
    'pinreset_callbacks_total',
    'Callbacks received by kind (twilio_status, email_events) and result (ok; repeat = accepted, changed nothing; forbidden, too_large, bad_request, unavailable).',
  );
  const statuses = new Counter(
    'pinreset_delivery_receipts_total',
    'Receipt changes by MessageStatus and ErrorCode ("" when none): each message counts once per status it reaches; repeats and late lower-ranked callbacks are not counted. Final statuses: delivered, undelivered, failed.',
  );
  const latency = new Histogram(
    'pinreset_callback_latency_seconds',
    'Time from request to answer, seconds.',
    LATENCY_BUCKETS,
  );
  let dbUp = 1;

  const answer = (
    res: http.ServerResponse,
    status: number,
    kind: string,
    result: string,
    started: bigint,
    text = '',
  ): void => {
    requests.inc({ kind, result });
    latency.observe({ kind }, Number(process.hrtime.bigint() - started) / 1e9);
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  async function twilioStatus(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    query: string,
    started: bigint,
  ): Promise<void> {
    const kind = 'twilio_status';
    const signature = req.headers['x-twilio-signature'];
    if (typeof signature !== 'string' || signature === '') {
      req.resume();
      return answer(res, 403, kind, 'forbidden', started, 'missing X-Twilio-Signature\n');
    }
    const body = await readBody(req, limit);
    if (body === 'too_large') return answer(res, 413, kind, 'too_large', started, `body over ${limit} bytes\n`);
    const form = new URLSearchParams(body);
    const params: Record<string, string> = {};
    for (const [k, v] of form) params[k] = v;
    const url = `${signedBase}${query ? `?${query}` : ''}`;
    if (!twilio.validateRequest(o.authToken, signature, url, params)) {
      return answer(res, 403, kind, 'forbidden', started, 'invalid X-Twilio-Signature\n');
    }
    const cb = parseStatusCallback(params, new URLSearchParams(query));
    if (typeof cb === 'string') return answer(res, 400, kind, 'bad_request', started, `${cb}\n`);
    let changed: boolean;
    try {
      changed = await writer.write(cb);
      dbUp = 1;
    } catch {
      dbUp = 0;
      // Twilio retries (the URL asks it to): nothing is lost while the database restarts.
      return answer(res, 503, kind, 'unavailable', started, 'receipt store unavailable, retry\n');
    }
    if (changed) statuses.inc({ status: cb.status, code: cb.errorCode ?? '' });
    answer(res, 204, kind, changed ? 'ok' : 'repeat', started);
  }

  async function emailEvents(req: http.IncomingMessage, res: http.ServerResponse, started: bigint): Promise<void> {
    const kind = 'email_events';
    if (!o.sendgridPublicKey) {
      req.resume();
      return answer(res, 404, kind, 'bad_request', started, 'email webhook not configured\n');
    }
    const body = await readBody(req, Math.max(limit, 1024 * 1024));
    if (body === 'too_large') return answer(res, 413, kind, 'too_large', started, 'body too large\n');
    const sig = req.headers['x-twilio-email-event-webhook-signature'];
    const ts = req.headers['x-twilio-email-event-webhook-timestamp'];
    if (
      typeof sig !== 'string' ||
      typeof ts !== 'string' ||
      !verifySendGridSignature(o.sendgridPublicKey, body, sig, ts, Date.now())
    ) {
      return answer(res, 403, kind, 'forbidden', started, 'invalid or stale event webhook signature\n');
    }
    const bounces = parseSendGridEvents(body);
    if (typeof bounces === 'string') return answer(res, 400, kind, 'bad_request', started, `${bounces}\n`);
    try {
      await recordEmailBounces(o.db, bounces);
      dbUp = 1;
    } catch {
      dbUp = 0;
      return answer(res, 503, kind, 'unavailable', started, 'store unavailable, retry\n');
    }
    answer(res, 204, kind, 'ok', started);
  }

  const server = http.createServer({ noDelay: true }, (req, res) => {
    const started = process.hrtime.bigint();
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = q < 0 ? '' : raw.slice(q + 1);
    const declared = Number(req.headers['content-length'] ?? 0);
    const fail = (err: unknown) => {
      if (!res.headersSent) answer(res, 500, 'other', 'error', started, `${(err as Error).message}\n`);
    };
    if (req.method === 'POST' && path === statusPath) {
      if (declared > limit) {
        res.setHeader('connection', 'close');
        req.resume();
        return answer(res, 413, 'twilio_status', 'too_large', started, `body over ${limit} bytes\n`);
      }
      return void twilioStatus(req, res, query, started).catch(fail);
    }
    if (req.method === 'POST' && path === emailPath) return void emailEvents(req, res, started).catch(fail);
    req.resume();
    if (req.method === 'GET' && path === '/healthz') {
      o.db.query('SELECT 1').then(
        () => {
          dbUp = 1;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"database":"up"}\n');
        },
        () => {
          dbUp = 0;
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"ok":false,"database":"down"}\n');
        },
      );
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(api.metrics());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const { port, host } = await listen(server, o.port ?? 0, o.host ?? '127.0.0.1');

  const api: CallbackServer = {
    url: `http://${host}:${port}`,
    port,
    metrics: () =>
      `${[
        ...requests.render(),
        ...statuses.render(),
        ...latency.render(),
        ...renderGauges([
          {
            name: 'pinreset_callbacks_database_up',
            help: 'Whether the last receipt write or health check reached PostgreSQL.',
            values: [{ value: dbUp }],
          },
        ]),
      ].join('\n')}\n`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return api;
}
