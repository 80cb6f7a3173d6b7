// SendGrid's Event Webhook, signed: ECDSA P-256 over SHA-256 of (timestamp + raw body), the
// signature base64 DER in X-Twilio-Email-Event-Webhook-Signature, the timestamp in
// X-Twilio-Email-Event-Webhook-Timestamp, the verification key shown by SendGrid as base64 DER
// (SubjectPublicKeyInfo). Bounces map to delivery state `undelivered` by our Message-ID.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { EmailBounce } from '../db/sql/record-email-bounces';

/** Signed requests older or newer than this are refused: a captured request cannot be replayed later. */
export const MAX_SKEW_MS = 10 * 60_000;

const keys = new Map<string, KeyObject>();

export function sendGridKey(base64Der: string): KeyObject {
  let key = keys.get(base64Der);
  if (!key)
    keys.set(
      base64Der,
      (key = createPublicKey({ key: Buffer.from(base64Der, 'base64'), format: 'der', type: 'spki' })),
    );
  return key;
}

export function verifySendGridSignature(
  publicKey: string,
  body: string,
  signature: string,
  timestamp: string,
  nowMs: number,
): boolean {
  if (!/^\d{9,11}$/.test(timestamp) || Math.abs(nowMs - Number(timestamp) * 1000) > MAX_SKEW_MS) return false;
  try {
    return verify(
      'sha256',
      Buffer.from(timestamp + body, 'utf8'),
      sendGridKey(publicKey),
      Buffer.from(signature, 'base64'),
    );
  } catch {
    return false;
  }
}

/** Bounce-like events of a (verified) batch; other events (delivered, open...) are ignored. */
export function parseSendGridEvents(body: string): EmailBounce[] | string {
  let events: unknown;
  try {
    events = JSON.parse(body);
  } catch {
    return 'body is not JSON';
  }
  if (!Array.isArray(events)) return 'body is not a JSON array of events';
  const out: EmailBounce[] = [];
  for (const e of events as Record<string, unknown>[]) {
    if (typeof e !== 'object' || e === null) continue;
    const event = e.event;
    if (event !== 'bounce' && event !== 'dropped') continue;
    const messageId = e['smtp-id'];
    if (typeof messageId !== 'string' || !/^<[^<>\s]{3,250}>$/.test(messageId)) continue;
    const kind = event === 'bounce' && e.type === 'blocked' ? 'blocked' : event;
    // status is an SMTP enhanced code ("5.1.1"); `reason` is free text that may quote the address.
    const status = typeof e.status === 'string' && /^\d\.\d{1,3}\.\d{1,3}$/.test(e.status) ? e.status : null;
    out.push({ messageId, event: kind, reason: status });
  }
  return out;
}
