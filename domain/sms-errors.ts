// Pure classification of SMS provider (Twilio) failures, on plain fields only, so it can be unit
// tested without sockets. providers/sms.ts extracts the fields from whatever the client threw.
import type { ClassifiedFailure } from './types';

export interface SmsErrorFields {
  /** HTTP status of a Twilio error response (RestException.status). */
  status?: number;
  /** Twilio error code from the response body (RestException.code), e.g. 21211. */
  twilioCode?: number;
  /** Network error code of a failed request (Node/axios `code`), e.g. 'ECONNRESET'. */
  errno?: string;
}

/** Recipient-level rejections Twilio will repeat for the same number: never retry. */
export const PERMANENT_TWILIO_CODES: ReadonlySet<number> = new Set([
  21211, 21408, 21606, 21610, 21612, 21614, 21635, 30005, 30006, 30007,
]);

/**
 * Throttling answered as a 4xx: 20429 (too many concurrent requests) and 21611 (the sender's
 * queue is full). Not processed, so retrying after a pause is safe; never the recipient's fault.
 */
export const RATE_LIMIT_TWILIO_CODES: ReadonlySet<number> = new Set([20429, 21611]);

/**
 * Codes that mean our own configuration is wrong (credentials, sender), not the recipient.
 * They classify as 'permanent' (FailureKind has nothing better), but a caller should stop the
 * whole run on them instead of marking every remaining customer unreachable.
 */
export const CONFIG_TWILIO_CODES: ReadonlySet<string> = new Set([
  '20003',
  'http_401',
  'http_403',
  '21212',
  '21603',
  '21606',
]);

/** Failures that happen before any byte of the request reached the provider. */
const NOT_SENT_ERRNOS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

export function classifySmsError(f: SmsErrorFields): ClassifiedFailure {
  const { status, twilioCode, errno } = f;
  if (status !== undefined || twilioCode !== undefined) {
    const code = twilioCode !== undefined ? String(twilioCode) : `http_${status}`;
    if (status === 429 || (twilioCode !== undefined && RATE_LIMIT_TWILIO_CODES.has(twilioCode))) {
      return { kind: 'rate_limited', code };
    }
    if (status === 401 || status === 403 || twilioCode === 20003) return { kind: 'permanent', code };
    // A 5xx may come after Twilio queued the message: reconcile before resending.
    if (status !== undefined && status >= 500) return { kind: 'ambiguous', code: `http_${status}` };
    if (twilioCode !== undefined && PERMANENT_TWILIO_CODES.has(twilioCode)) return { kind: 'permanent', code };
    if (status !== undefined && status >= 400) return { kind: 'permanent', code };
    // A code without a usable status (should not happen with the REST API): do not guess "safe".
    return { kind: 'ambiguous', code };
  }
  if (errno) {
    return { kind: NOT_SENT_ERRNOS.has(errno) ? 'transient' : 'ambiguous', code: errno };
  }
  // Unknown failure shape: the request may have gone out, so reconcile.
  return { kind: 'ambiguous', code: 'unknown' };
}

export function isSmsConfigError(failure: ClassifiedFailure): boolean {
  return failure.kind === 'permanent' && CONFIG_TWILIO_CODES.has(failure.code);
}
