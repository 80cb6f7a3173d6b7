// Pure classification of SMTP (nodemailer) failures, on plain fields only, so it can be unit
// tested without sockets. providers/email.ts extracts the fields from the nodemailer error.
import type { ClassifiedFailure } from './types';

export interface EmailErrorFields {
  /** SMTP reply code the server answered with (nodemailer `responseCode`), e.g. 451, 550. */
  responseCode?: number;
  /** nodemailer error type (`code`): 'ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EENVELOPE', ... */
  code?: string;
  /** The system error code nodemailer replaced with its own type (`originalCode`), e.g. 'ECONNREFUSED'. */
  originalCode?: string;
}

/** Failures before a connection existed (refused, DNS): nothing can have been delivered. */
const NOT_CONNECTED: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EDNS']);

/** nodemailer errors about our own setup (credentials, options): retrying cannot help. */
const CONFIG_ERRORS: ReadonlySet<string> = new Set(['EAUTH', 'ENOAUTH', 'EOAUTH2', 'ECONFIG']);

/**
 * Failures that mean our relay configuration is wrong (authentication), not the recipient.
 * They classify as 'permanent' (FailureKind has nothing better); a caller should stop the run on
 * them instead of marking every remaining customer unreachable.
 */
export const CONFIG_SMTP_CODES: ReadonlySet<string> = new Set(['smtp_530', 'smtp_534', 'smtp_535', ...CONFIG_ERRORS]);

export function classifyEmailError(f: EmailErrorFields): ClassifiedFailure {
  const { responseCode, code, originalCode } = f;
  if (responseCode !== undefined && responseCode >= 400 && responseCode < 600) {
    // The server answered and refused: 4xx is "try again later", 5xx is final.
    return { kind: responseCode < 500 ? 'transient' : 'permanent', code: `smtp_${responseCode}` };
  }
  if (originalCode !== undefined && NOT_CONNECTED.has(originalCode)) return { kind: 'transient', code: originalCode };
  if (code !== undefined && NOT_CONNECTED.has(code)) return { kind: 'transient', code };
  if (code !== undefined && CONFIG_ERRORS.has(code)) return { kind: 'permanent', code };
  // Connection lost, timed out or a protocol surprise without a reply code: the message may
  // have been accepted. Resending with the same Message-ID is deduplicated by mail stores.
  return { kind: 'ambiguous', code: code ?? 'unknown' };
}

export function isEmailConfigError(failure: ClassifiedFailure): boolean {
  return CONFIG_SMTP_CODES.has(failure.code);
}
