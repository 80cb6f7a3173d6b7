// SmsSender on the real twilio client. autoRetry stays off: retrying is the pipeline's decision,
// because a blind retry after an ambiguous failure can send a second SMS.
import http from 'node:http';
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

/** A RequestClient that can point the client at another base URL, keep-alive on both schemes. */
class RoutingRequestClient extends twilio.RequestClient {
  private readonly apiUrl: string | undefined;

  constructor(apiUrl: string | undefined, timeoutMs: number, maxSockets: number) {
    // maxFreeSockets = maxSockets: twilio's default (5) closes pooled sockets after every burst.
    super({ timeout: timeoutMs, keepAlive: true, maxSockets, maxFreeSockets: maxSockets, autoRetry: false });
    this.apiUrl = apiUrl?.replace(/\/+$/, '');
    // RequestClient only configures an https agent; axios takes httpAgent for http:// targets.
    this.axios.defaults.httpAgent = new http.Agent({
      keepAlive: true,
      maxSockets,
      maxFreeSockets: maxSockets,
      timeout: timeoutMs,
    });
    // Report timeouts as ETIMEDOUT rather than axios' catch-all ECONNABORTED.
    this.axios.defaults.transitional = { ...this.axios.defaults.transitional, clarifyTimeoutError: true };
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<Response<TData>> {
    if (this.apiUrl) opts = { ...opts, uri: opts.uri.replace(TWILIO_API_ORIGIN, this.apiUrl) };
    return super.request(opts);
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
  if (!opts.from && !opts.messagingServiceSid) throw new Error('createTwilioSms: from or messagingServiceSid is required');
  const client = createTwilioClient(opts);
  const sender = {
    ...(opts.from ? { from: opts.from } : {}),
    ...(opts.messagingServiceSid ? { messagingServiceSid: opts.messagingServiceSid } : {}),
    ...(opts.statusCallbackUrl ? { statusCallback: opts.statusCallbackUrl } : {}),
  };

  return {
    async send(message: SmsMessage): Promise<SentSms> {
      try {
        const created = await client.messages.create({ to: message.to, body: message.body, ...sender });
        return { sid: created.sid };
      } catch (error) {
        throw sanitize(error, message);
      }
    },

    async listSentSince(to: string, since: Date): Promise<SmsRecord[]> {
      try {
        // Not filtered by DateSent: a message still queued at Twilio has no date_sent yet, and
        // it is exactly the kind an ambiguous attempt leaves behind. The list is newest first, so
        // the recent page filtered on date_created covers the attempt.
        const found = await client.messages.list({ to, limit: 50 });
        return found
          .filter((m) => m.dateCreated.getTime() >= since.getTime() - 1000) // dates are whole seconds
          .map((m) => ({ sid: m.sid, to: m.to, body: m.body, dateCreated: m.dateCreated }));
      } catch (error) {
        throw sanitize(error, { to });
      }
    },

    classify(error: unknown): ClassifiedFailure {
      return classifySmsError(errorFields(error));
    },
  };
}
