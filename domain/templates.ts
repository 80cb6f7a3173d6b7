// Customer messages. They never contain a PIN: the customer sets a new one through a verified
// channel (NIST SP 800-63B), and the carrier never asks for a PIN by text.

export interface TemplateContext {
  carrierName: string;
  resetUrl: string;
}

/**
 * The SMS body. `ref` is the account's support reference for this run (see messageRef): it makes
 * each body unique, so reconciling an ambiguous send can tell this account's message from one to
 * another account sharing the same phone number.
 */
export function smsText(ctx: TemplateContext, ref: string): string {
  return `${ctx.carrierName}: for your security we reset your account PIN. Set a new one at ${ctx.resetUrl}. We never ask for your PIN by text. Ref ${ref}`;
}

export function emailSubject(ctx: TemplateContext): string {
  return `${ctx.carrierName}: your account PIN was reset`;
}

export function emailText(ctx: TemplateContext, ref: string): string {
  return [
    'Hello,',
    '',
    `As a security precaution, ${ctx.carrierName} has reset the PIN on your prepaid account. Your old PIN no longer works.`,
    '',
    `To set a new PIN, visit ${ctx.resetUrl} and sign in, or visit a store with photo ID.`,
    '',
    `${ctx.carrierName} will never ask you for your PIN by text message, email or phone call. If someone does, do not share it.`,
    '',
    `${ctx.carrierName} Security`,
    `Reference: ${ref}`,
  ].join('\n');
}

/** Deterministic per run and account: a resend after an ambiguous failure is deduplicated by mail stores. */
export function emailMessageId(runId: string, accountId: number, domain: string): string {
  return `<pinreset.${runId}.${accountId}@${domain}>`;
}

// GSM 03.38 basic character set (the extension table costs two septets each).
const GSM7_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM7_EXTENDED = '^{}\\[~]|€\f';

export type SmsEncoding = 'GSM-7' | 'UCS-2';

/** Encoding and segment count of an SMS body, as carriers count them. */
export function smsSegments(text: string): { encoding: SmsEncoding; units: number; segments: number } {
  let septets = 0;
  for (const ch of text) {
    if (GSM7_BASIC.includes(ch)) septets += 1;
    else if (GSM7_EXTENDED.includes(ch)) septets += 2;
    else {
      // One character outside GSM-7 switches the whole message to UCS-2 (UTF-16 code units).
      const units = text.length;
      return { encoding: 'UCS-2', units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
    }
  }
  return { encoding: 'GSM-7', units: septets, segments: septets <= 160 ? 1 : Math.ceil(septets / 153) };
}

/**
 * The reference in a message body, or undefined. References are 16 hex digits (a keyed MAC of the
 * run and the account, made in the database: see 007_exactly_once.sql) after "Ref ", outside any
 * link, so link shortening leaves them alone.
 */
export function referenceIn(body: string): string | undefined {
  return /\bRef(?:erence:)? ([0-9A-F]{16})\b/.exec(body)?.[1];
}

/** The longest reference: the template check uses it so every real body fits too. */
export const REFERENCE_EXAMPLE = 'FFFFFFFFFFFFFFFF';
