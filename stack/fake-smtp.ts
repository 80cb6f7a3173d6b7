// A local SMTP sink for tests and load runs, on smtp-server. Records the envelope and the
// Message-ID of each accepted mail; only the header block is kept, the body is discarded.
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { listen } from './ports';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerError, type SMTPServerSession } from 'smtp-server';

export interface RecipientRule {
  /** Case-insensitive suffix of the RCPT TO address, e.g. "@bounce.test" or "bob@x.test". */
  suffix: string;
  /** Reply code at RCPT TO, e.g. 550 (permanent) or 450 (try later). */
  code: number;
}

export interface SmtpFaults {
  /** Share (0..1) of messages answered 451 at the end of DATA; not recorded. */
  rate4xx: number;
  /** Share answered 554 at the end of DATA; not recorded. */
  rate5xx: number;
  /** First matching rule rejects the recipient at RCPT TO. */
  rejectRecipients: RecipientRule[];
}

export interface FakeSmtpOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  faults?: Partial<SmtpFaults>;
  /** Seed of the fault PRNG, for repeatable fault sequences. */
  seed?: number;
  /**
   * Also serve an HTTP control API on this port (0 = free port), so another process can steer
   * the sink: POST /__control/faults, GET /__control/stats, GET /__control/duplicates, POST /__control/reset.
   */
  controlPort?: number;
}

export interface FakeSmtpMessage {
  from: string;
  to: string[];
  /** Message-ID header without the angle brackets; '' when the mail had none. */
  messageId: string;
  /** Raw Subject header (MIME encoded-words are not decoded). */
  subject: string;
  receivedAt: Date;
}

export interface FakeSmtpStats {
  accepted: number;
  rejected4xx: number;
  rejected5xx: number;
  rejectedRecipients: number;
  connections: number;
}

export interface FakeSmtp {
  readonly url: string;
  readonly port: number;
  /** http://host:port of the control API, when controlPort was given. */
  readonly controlUrl: string | undefined;
  messages(): ReadonlyArray<FakeSmtpMessage>;
  /** Raw deliveries per recipient. */
  countsByRecipient(): Map<string, number>;
  countsByMessageId(): Map<string, number>;
  /** Recipients with more than one DISTINCT Message-ID: what a mailbox would really show twice. */
  duplicates(): Array<{ to: string; count: number }>;
  /** Recipients with more than one raw delivery, same Message-ID or not. */
  rawDuplicates(): Array<{ to: string; count: number }>;
  stats(): FakeSmtpStats;
  faults(): SmtpFaults;
  setFaults(partial: Partial<SmtpFaults>): SmtpFaults;
  /** Forget all records and zero the stats (faults stay). */
  reset(): void;
  stop(): Promise<void>;
}

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

function smtpError(code: number, message: string): SMTPServerError {
  const err: SMTPServerError = new Error(message);
  err.responseCode = code;
  return err;
}

function validateFaults(f: SmtpFaults): void {
  for (const k of ['rate4xx', 'rate5xx'] as const) {
    const v = f[k];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`fault ${k} must be a number in 0..1`);
  }
  if (
    !Array.isArray(f.rejectRecipients) ||
    !f.rejectRecipients.every((r) => typeof r.suffix === 'string' && Number.isInteger(r.code))
  ) {
    throw new Error('fault rejectRecipients must be an array of { suffix, code }');
  }
}

const HEADER_END = Buffer.from('\r\n\r\n');
/** Stop looking for the end of the headers after this much; the rest is body we do not need. */
const MAX_HEADER_BYTES = 64 * 1024;

/** A header line plus its folded continuation lines (multiline mode: ^ is a line start). */
const headerPattern = (name: string): RegExp => new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im');
const MESSAGE_ID = headerPattern('Message-ID');
const SUBJECT = headerPattern('Subject');

/** Unfolded value of one header ('' if absent). */
function headerValue(headers: string, pattern: RegExp): string {
  const m = pattern.exec(headers);
  return m ? m[1].replace(/\r?\n[ \t]+/g, ' ').trim() : '';
}

function collect<K>(source: Iterable<K>): Map<K, number> {
  const counts = new Map<K, number>();
  for (const k of source) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

export async function startFakeSmtp(opts: FakeSmtpOptions = {}): Promise<FakeSmtp> {
  let faults: SmtpFaults = { rate4xx: 0, rate5xx: 0, rejectRecipients: [], ...opts.faults };
  validateFaults(faults);
  const random = prng(opts.seed ?? 0x5eed);
  let records: FakeSmtpMessage[] = [];
  let stats: FakeSmtpStats = { accepted: 0, rejected4xx: 0, rejected5xx: 0, rejectedRecipients: 0, connections: 0 };

  function onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null) => void,
  ): void {
    // Keep bytes only until the blank line that ends the headers, then just drain.
    const chunks: Buffer[] = [];
    let size = 0;
    let headers: string | null = null;
    stream.on('data', (chunk: Buffer) => {
      if (headers !== null) return;
      chunks.push(chunk);
      size += chunk.length;
      const buf = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
      const end = buf.indexOf(HEADER_END);
      if (end >= 0 || size > MAX_HEADER_BYTES) {
        headers = buf.toString('utf8', 0, end >= 0 ? end : size);
        chunks.length = 0;
      } else if (chunks.length > 1) {
        chunks.splice(0, chunks.length, buf);
      }
    });
    stream.on('end', () => {
      const head = headers ?? Buffer.concat(chunks, size).toString('utf8');
      const r = random();
      if (r < faults.rate4xx) {
        stats.rejected4xx++;
        return callback(smtpError(451, 'Requested action aborted: local error in processing'));
      }
      if (r < faults.rate4xx + faults.rate5xx) {
        stats.rejected5xx++;
        return callback(smtpError(554, 'Transaction failed'));
      }
      const env = session.envelope;
      records.push({
        from: env.mailFrom ? env.mailFrom.address : '',
        to: env.rcptTo.map((a) => a.address),
        messageId: headerValue(head, MESSAGE_ID).replace(/^<|>$/g, ''),
        subject: headerValue(head, SUBJECT),
        receivedAt: new Date(),
      });
      stats.accepted++;
      callback();
    });
  }

  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    // Reverse DNS per connection would stall every new pooled connection for nothing.
    disableReverseLookup: true,
    banner: 'pinreset fake SMTP',
    size: 10 * 1024 * 1024,
    maxClients: 1000,
    // Pooled clients idle between bursts; closing them after the default 60 s would turn the next
    // send on that connection into a spurious ambiguous failure in long tests.
    socketTimeout: 10 * 60_000,
    onConnect(_session, callback) {
      stats.connections++;
      callback();
    },
    onRcptTo(address, _session, callback) {
      const rcpt = address.address.toLowerCase();
      const rule = faults.rejectRecipients.find((r) => rcpt.endsWith(r.suffix.toLowerCase()));
      if (!rule) return callback();
      stats.rejectedRecipients++;
      callback(smtpError(rule.code, rule.code >= 500 ? 'Mailbox unavailable' : 'Mailbox temporarily unavailable'));
    },
    onData,
  });
  server.on('error', () => {
    // Client-side protocol errors and resets surface here; a sink has nothing to do about them.
  });

  const { port, host } = await listen(server.server, opts.port ?? 0, opts.host ?? '127.0.0.1');

  const perRecipient = (distinct: boolean): Array<{ to: string; count: number }> => {
    const seen = new Map<string, Set<string> | number>();
    for (const m of records) {
      for (const to of m.to) {
        if (distinct) {
          let ids = seen.get(to) as Set<string> | undefined;
          if (!ids) seen.set(to, (ids = new Set()));
          // A mail without Message-ID cannot be deduplicated by a store: count it on its own.
          ids.add(m.messageId || `\0${ids.size}`);
        } else {
          seen.set(to, ((seen.get(to) as number | undefined) ?? 0) + 1);
        }
      }
    }
    const out: Array<{ to: string; count: number }> = [];
    for (const [to, v] of seen) {
      const count = typeof v === 'number' ? v : v.size;
      if (count > 1) out.push({ to, count });
    }
    return out;
  };

  const control =
    opts.controlPort === undefined ? undefined : await startControl(() => api, opts.controlPort, opts.host);
  const api: FakeSmtp = {
    url: `smtp://${host}:${port}`,
    port,
    controlUrl: control?.url,
    messages: () => records,
    countsByRecipient: () => collect(records.flatMap((m) => m.to)),
    countsByMessageId: () => collect(records.map((m) => m.messageId)),
    duplicates: () => perRecipient(true),
    rawDuplicates: () => perRecipient(false),
    stats: () => ({ ...stats }),
    faults: () => structuredClone(faults),
    setFaults(partial) {
      const next = { ...faults, ...partial };
      validateFaults(next);
      faults = next;
      return structuredClone(faults);
    },
    reset() {
      records = [];
      stats = { accepted: 0, rejected4xx: 0, rejected5xx: 0, rejectedRecipients: 0, connections: 0 };
    },
    async stop() {
      await control?.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits up to closeTimeout for clients to say QUIT; pooled clients never do.
        for (const conn of server.connections) conn.close();
      });
    },
  };
  return api;
}

/** The cross-process control API (plain JSON over HTTP). */
async function startControl(
  fake: () => FakeSmtp,
  port: number,
  host = '127.0.0.1',
): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const reply = (status: number, v: unknown): void => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      const route = `${req.method} ${req.url}`;
      try {
        if (route === 'POST /__control/faults')
          return reply(200, fake().setFaults(JSON.parse(raw || '{}') as Partial<SmtpFaults>));
        if (route === 'GET /__control/faults') return reply(200, fake().faults());
        if (route === 'GET /__control/stats') return reply(200, fake().stats());
        if (route === 'GET /__control/duplicates')
          return reply(200, { duplicates: fake().duplicates(), raw: fake().rawDuplicates() });
        if (route === 'POST /__control/reset') {
          fake().reset();
          return reply(200, { ok: true });
        }
        reply(404, { error: 'unknown control endpoint' });
      } catch (e) {
        reply(400, { error: (e as Error).message });
      }
    });
  });
  const where = await listen(server, port, host);
  return {
    url: `http://${where.host}:${where.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// Standalone: `npx tsx stack/fake-smtp.ts` (env FAKE_SMTP_PORT, FAKE_SMTP_HOST, FAKE_SMTP_SEED,
// FAKE_SMTP_CONTROL_PORT; the control API is always on in this mode).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const fake = await startFakeSmtp({
    port: Number(process.env.FAKE_SMTP_PORT ?? 0),
    host: process.env.FAKE_SMTP_HOST ?? '127.0.0.1',
    seed: process.env.FAKE_SMTP_SEED ? Number(process.env.FAKE_SMTP_SEED) : undefined,
    controlPort: Number(process.env.FAKE_SMTP_CONTROL_PORT ?? 0),
  });
  console.log(JSON.stringify({ fakeSmtp: fake.url, control: fake.controlUrl }));
  const shutdown = (): void => void fake.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
