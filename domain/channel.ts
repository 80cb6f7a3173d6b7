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

export type ChannelChoice = { channel: Channel } | { unreachable: string };

/**
 * First channel that can reach the account. `smsFailed` is true after a permanent SMS error, so
 * the fallback is the next channel the policy allows. The reason names why nothing reaches it.
 */
export function chooseChannel(c: Contact, policy: ChannelPolicy, smsFailed = false): ChannelChoice {
  const sms = !smsFailed && policy !== 'email_only' && smsCapable(c);
  const email = policy !== 'sms_only' && emailCapable(c);
  if (sms) return { channel: 'sms' };
  if (email) return { channel: 'email' };
  if (smsFailed) return { unreachable: 'sms_failed_no_email' };
  if (policy === 'email_only') return { unreachable: c.emailOptOut ? 'email_opted_out' : 'no_valid_email' };
  if (policy === 'sms_only') {
    if (c.smsOptOut) return { unreachable: 'sms_opted_out' };
    return { unreachable: c.phoneType === 'landline' ? 'landline_only' : 'no_valid_mobile' };
  }
  return { unreachable: 'no_reachable_contact' };
}
