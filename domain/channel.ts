// Which channel reaches an account, given its contact details and the run's policy. Pure.
import { validateEmail } from './email';
import { isE164 } from './phone';
import type { Channel, ChannelPolicy } from './types';

export interface Contact {
  status: string | null;
  phone: string | null;
  phoneType: string | null;
  smsOptOut: boolean;
  email: string | null;
  emailOptOut: boolean;
}

export function smsCapable(c: Contact): boolean {
  return c.phone !== null && isE164(c.phone) && !c.smsOptOut && c.phoneType !== 'landline';
}

export function emailCapable(c: Contact): boolean {
  return c.email !== null && !c.emailOptOut && 'email' in validateEmail(c.email);
}

export type ChannelChoice = { channel: Channel } | { unreachable: UnreachableReason };

/**
 * Why nothing reaches an account, as recorded in the ledger's error_code (report, status):
 * no_contact (no phone and no email on file, or none the policy may use), landline_only,
 * opted_out (STOP or an email opt-out), invalid_number, invalid_email; and sms_failed_no_email
 * after a permanent SMS error with no email to fall back to.
 */
export type UnreachableReason =
  'no_contact' | 'landline_only' | 'opted_out' | 'invalid_number' | 'invalid_email' | 'sms_failed_no_email';

/** What keeps SMS from this account ('missing': no phone at all), or undefined when it can take one. */
function smsProblem(c: Contact): 'missing' | 'opted_out' | 'invalid_number' | 'landline_only' | undefined {
  if (c.phone === null || c.phone.trim() === '') return 'missing';
  if (c.smsOptOut) return 'opted_out';
  if (!isE164(c.phone)) return 'invalid_number';
  if (c.phoneType === 'landline') return 'landline_only';
  return undefined;
}

function emailProblem(c: Contact): 'missing' | 'opted_out' | 'invalid_email' | undefined {
  if (c.email === null || c.email.trim() === '') return 'missing';
  if (c.emailOptOut) return 'opted_out';
  if (!('email' in validateEmail(c.email))) return 'invalid_email';
  return undefined;
}

/**
 * First channel that can reach the account. `smsFailed` is true after a permanent SMS error, so
 * the fallback is the next channel the policy allows. The reason names why nothing reaches it:
 * the phone's problem first (the primary channel), then the email's.
 */
export function chooseChannel(c: Contact, policy: ChannelPolicy, smsFailed = false): ChannelChoice {
  const sms = !smsFailed && policy !== 'email_only' && smsCapable(c);
  const email = policy !== 'sms_only' && emailCapable(c);
  if (sms) return { channel: 'sms' };
  if (email) return { channel: 'email' };
  if (smsFailed) return { unreachable: 'sms_failed_no_email' };
  const problems = [
    policy !== 'email_only' ? smsProblem(c) : 'missing',
    policy !== 'sms_only' ? emailProblem(c) : 'missing',
  ];
  const reason = problems.find((p) => p !== undefined && p !== 'missing');
  return { unreachable: (reason as UnreachableReason | undefined) ?? 'no_contact' };
}
