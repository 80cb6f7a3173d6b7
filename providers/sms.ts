// SmsSender on the real twilio client. autoRetry stays off: retrying is the pipeline's decision,
// because a blind retry after an ambiguous failure can send a second SMS.
import http from 'node:http';
import https from 'node:https';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import type Response from 'twilio/lib/http/response';
import { classifySmsError, type SmsErrorFields } from '../domain/sms-errors';
import type { ClassifiedFailure, SentSms, SmsMessage, SmsRecord, SmsSender } from '../domain/types';

export interface TwilioSmsOptions {
  accountSid: string;
  authToken: string;
  /** Sender number; or use messagingServiceSid (at least one is required). */
  from?: string;
  messagingServiceSid?: string;
  /** Base URL replacing https://api.twilio.com, e.g. a local fake. Unset in production. */
  apiUrl?: string;
  statusCallbackUrl?: string;
  /** Per-request timeout, also the idle timeout of pooled sockets. Default 10 s. */
  timeoutMs?: number;
  /** Concurrent sockets to the API. Default 64. */
  maxSockets?: number;
}

/** Twilio API origins (api.twilio.com and regional/edge variants) that apiUrl replaces. */
const TWILIO_API_ORIGIN = /^https:\/\/api(?:\.[a-z0-9-]+)*\.twilio\.com(?=\/|$)/;

/** An Error with a Node-style `code`, as axios and node:http report network failures. */
function networkError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** application/x-www-form-urlencoded like twilio-node's (qs, arrayFormat "repeat"): lists repeat the key. */
function formEncode(data: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (value === undefined) continue;
    const k = encodeURIComponent(key);
    if (Array.isArray(value)) {
      for (const v of value) if (v !== undefined) parts.push(`${k}=${encodeURIComponent(v === null ? '' : String(v))}`);
    } else {
      parts.push(`${k}=${encodeURIComponent(value === null ? '' : String(value))}`);
    }
  }
  return parts.join('&');
}

/**
 * twilio-node's HTTP layer, on node:http(s) directly: point the client at another base URL
 * (apiUrl), keep-alive on both schemes, no axios. twilio-node still builds every request and
 * parses every answer (RestException, Message instances, paging); this only moves the bytes.
 * Profiles of the notify worker put axios' per-request work (config merging, header objects,
 * transforms, interceptors) at about a fifth of the worker's CPU: see BENCHMARKS.md.
 * Behaviour kept from the axios client: no redirects followed, any HTTP status resolves (twilio-node
 * turns >= 400 into RestException), the timeout covers the whole request and fails with ETIMEDOUT,
 * network failures keep their Node `code` (ECONNRESET, ECONNREFUSED...).
 */
class RoutingRequestClient extends twilio.RequestClient {
  private readonly apiUrl: string | undefined;
  private readonly timeoutMs: number;
  private readonly agents: { http: http.Agent; https: https.Agent };

  constructor(apiUrl: string | undefined, timeoutMs: number, maxSockets: number) {
    // maxFreeSockets = maxSockets: twilio's default (5) closes pooled sockets after every burst.
    const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: timeoutMs };
    super({ timeout: timeoutMs, keepAlive: true, maxSockets, maxFreeSockets: maxSockets, autoRetry: false });
    this.apiUrl = apiUrl?.replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
    this.agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<Response<TData>> {
    if (!opts.method) return Promise.reject(new Error('http method is required'));
    if (!opts.uri) return Promise.reject(new Error('uri is required'));
    const url = new URL(this.apiUrl ? opts.uri.replace(TWILIO_API_ORIGIN, this.apiUrl) : opts.uri);
    if (opts.params) {
      const query = formEncode(opts.params as Record<string, unknown>);
      if (query) url.search = url.search ? `${url.search}&${query}` : `?${query}`;
    }
    const headers: Record<string, string> = { ...(opts.headers as Record<string, string> | undefined) };
    if (!headers.Connection && !headers.connection) headers.Connection = 'keep-alive';
    if (opts.username && opts.password)
      headers.Authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    let body: string | undefined;
    if (opts.data !== undefined && opts.data !== null) {
      const type = headers['Content-Type'];
      if (type === 'application/x-www-form-urlencoded') body = formEncode(opts.data as Record<string, unknown>);
      else if (type === 'application/json')
        body = typeof opts.data === 'string' ? opts.data : JSON.stringify(opts.data);
    }
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
    const https_ = url.protocol === 'https:';
    const timeoutMs = opts.timeout ?? this.timeoutMs;

    return new Promise<Response<TData>>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, value?: Response<TData>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value!);
      };
      const req = (https_ ? https : http).request(
        url,
        { method: opts.method.toUpperCase(), headers, agent: https_ ? this.agents.https : this.agents.http },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => finish(e));
          res.on('aborted', () => finish(networkError('ECONNRESET', 'response aborted')));
          res.on('end', () => {
            const text = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
            finish(undefined, {
              statusCode: res.statusCode ?? 0,
              body: text as unknown as TData,
              headers: res.headers,
            } as unknown as Response<TData>);
          });
        },
      );
      const timer = setTimeout(() => {
        const err = networkError('ETIMEDOUT', `timeout of ${timeoutMs}ms exceeded`);
        finish(err);
        req.destroy(err);
      }, timeoutMs);
      req.on('error', (e) => finish(e));
      req.end(body);
    });
  }
}

/** A failed request without a Twilio error body (network, timeout). Carries no request data. */
export class SmsTransportError extends Error {
  override readonly name = 'SmsTransportError';
  constructor(readonly code: string) {
    super(`Twilio request failed: ${code}`);
  }
}

/** The twilio client the sender uses, exposed for tests and tools (listing, paging). */
export function createTwilioClient(opts: TwilioSmsOptions): twilio.Twilio {
  const httpClient = new RoutingRequestClient(opts.apiUrl, opts.timeoutMs ?? 10_000, opts.maxSockets ?? 64);
  return twilio(opts.accountSid, opts.authToken, { httpClient, autoRetry: false });
}

function errorFields(error: unknown): SmsErrorFields {
  if (typeof error !== 'object' || error === null) return {};
  const e = error as { status?: unknown; code?: unknown; cause?: { code?: unknown } };
  const f: SmsErrorFields = {};
  if (typeof e.status === 'number') f.status = e.status;
  if (typeof e.code === 'number') f.twilioCode = e.code;
  else if (typeof e.code === 'string') f.errno = e.code;
  else if (typeof e.cause?.code === 'string') f.errno = e.cause.code;
  return f;
}

/**
 * What the caller gets to see and log. Twilio's own messages can quote the number ("The 'To'
 * number +1... is not valid") and axios errors carry the request (form body, auth header), so
 * neither leaves this module as is.
 */
function sanitize(error: unknown, message: SmsMessage | { to: string }): Error {
  const { status, twilioCode, errno } = errorFields(error);
  if (error instanceof Error && (status !== undefined || twilioCode !== undefined)) {
    // RestException (or the RFC 9457 TwilioServiceException): keep the type, status and code.
    error.message = `Twilio error ${twilioCode ?? 'unknown'} (HTTP ${status ?? 'unknown'})`;
    for (const key of ['details', 'detail', 'errors', 'instance']) {
      if (key in error) Reflect.set(error, key, undefined);
    }
    return error;
  }
  if (errno) return new SmsTransportError(errno);
  if (error instanceof Error) {
    // twilio-node's own argument errors: keep the text, minus anything customer-specific.
    let text = error.message;
    if (message.to) text = text.split(message.to).join('[to]');
    if ('body' in message && message.body) text = text.split(message.body).join('[body]');
    const clean = new Error(`Twilio client error: ${text}`);
    clean.name = error.name;
    return clean;
  }
  return new SmsTransportError('unknown');
}

export function createTwilioSms(opts: TwilioSmsOptions): SmsSender {
  if (!opts.from && !opts.messagingServiceSid)
    throw new Error('createTwilioSms: from or messagingServiceSid is required');
  const client = createTwilioClient(opts);
  const sender = {
    ...(opts.from ? { from: opts.from } : {}),
    ...(opts.messagingServiceSid ? { messagingServiceSid: opts.messagingServiceSid } : {}),
    ...(opts.statusCallbackUrl ? { statusCallback: opts.statusCallbackUrl } : {}),
  };

  return {
    async send(message: SmsMessage): Promise<SentSms> {
      try {
        // The run's frozen sender wins over this worker's configured one.
        const frozen = message.sender?.messagingServiceSid
          ? { messagingServiceSid: message.sender.messagingServiceSid }
          : message.sender?.from
            ? { from: message.sender.from }
            : undefined;
        const created = await client.messages.create({
          to: message.to,
          body: message.body,
          ...(frozen
            ? { ...frozen, ...(opts.statusCallbackUrl ? { statusCallback: opts.statusCallbackUrl } : {}) }
            : sender),
          ...(message.statusCallback ? { statusCallback: message.statusCallback } : {}),
        });
        return { sid: created.sid };
      } catch (error) {
        throw sanitize(error, message);
      }
    },

    async fetch(sid: string): Promise<SmsRecord | undefined> {
      try {
        const m = await client.messages(sid).fetch();
        return {
          sid: m.sid,
          to: m.to,
          body: m.body,
          dateCreated: m.dateCreated,
          status: m.status,
          errorCode: m.errorCode == null ? null : String(m.errorCode),
        };
      } catch (error) {
        if (errorFields(error).status === 404) return undefined;
        throw sanitize(error, { to: '' });
      }
    },

    async listToSince(to: string, day: Date): Promise<SmsRecord[]> {
      try {
        // Twilio filters DateSent by GMT day only, so ask from the start of the attempt's day and
        // read every page: a page of 50 newest can miss the attempt on a busy number.
        const midnight = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()));
        const found = await client.messages.list({ to, dateSentAfter: midnight, pageSize: 50 });
        return found.map((m) => ({ sid: m.sid, to: m.to, body: m.body, dateCreated: m.dateCreated }));
      } catch (error) {
        throw sanitize(error, { to });
      }
    },

    classify(error: unknown): ClassifiedFailure {
      return classifySmsError(errorFields(error));
    },
  };
}
