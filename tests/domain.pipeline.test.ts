// Pure domain logic: channel choice, message templates, backoff, run parameters.
import { describe, expect, it } from 'vitest';
import { chooseChannel, type Contact } from '../domain/channel';
import { emailMessageId, emailText, REFERENCE_EXAMPLE, referenceIn, smsSegments, smsText } from '../domain/templates';
import { assertTemplatesFit } from '../domain/template-check';
import { backoffMs, THROTTLE_BACKOFF } from '../domain/retry';
import { DEFAULT_PARAMS, MIN_RATE, paramProblems, rateProblems } from '../domain/run';
import { blockSize } from '../activities/send-gate';

const mobile: Contact = {
  status: 'active',
  phone: '+14155550123',
  phoneType: 'mobile',
  smsOptOut: false,
  email: 'a@b.example',
  emailOptOut: false,
};

describe('chooseChannel', () => {
  it('prefers SMS to a valid mobile number', () => {
    expect(chooseChannel(mobile, 'sms_then_email')).toEqual({ channel: 'sms' });
  });
  it('falls back to email for landlines, opt-outs, missing or invalid numbers', () => {
    expect(chooseChannel({ ...mobile, phoneType: 'landline' }, 'sms_then_email')).toEqual({ channel: 'email' });
    expect(chooseChannel({ ...mobile, smsOptOut: true }, 'sms_then_email')).toEqual({ channel: 'email' });
    expect(chooseChannel({ ...mobile, phone: null }, 'sms_then_email')).toEqual({ channel: 'email' });
    expect(chooseChannel({ ...mobile, phone: '555-0123' }, 'sms_then_email')).toEqual({ channel: 'email' });
    expect(chooseChannel(mobile, 'sms_then_email', true)).toEqual({ channel: 'email' });
  });
  it('records why nobody can be reached: no contact, landline only, opted out, invalid number, invalid email', () => {
    const none = (
      over: Partial<typeof mobile>,
      policy: 'sms_then_email' | 'sms_only' | 'email_only' = 'sms_then_email',
    ) => chooseChannel({ ...mobile, ...over }, policy);
    expect(none({ phone: null, email: null })).toEqual({ unreachable: 'no_contact' });
    expect(none({ phone: '', email: '' })).toEqual({ unreachable: 'no_contact' });
    expect(none({ phoneType: 'landline', email: null })).toEqual({ unreachable: 'landline_only' });
    expect(none({ smsOptOut: true, email: null })).toEqual({ unreachable: 'opted_out' });
    expect(none({ phone: null, emailOptOut: true })).toEqual({ unreachable: 'opted_out' });
    expect(none({ phone: 'n/a', email: null })).toEqual({ unreachable: 'invalid_number' });
    expect(none({ phone: null, email: 'broken@' })).toEqual({ unreachable: 'invalid_email' });
    // The phone's problem first (SMS is the primary channel), then the email's.
    expect(none({ phoneType: 'landline', email: 'broken@' })).toEqual({ unreachable: 'landline_only' });
    expect(chooseChannel({ ...mobile, email: 'not-an-email' }, 'sms_then_email', true)).toEqual({
      unreachable: 'sms_failed_no_email',
    });
    expect(none({ emailOptOut: true }, 'email_only')).toEqual({ unreachable: 'opted_out' });
    expect(none({ email: null }, 'email_only')).toEqual({ unreachable: 'no_contact' });
    expect(none({ smsOptOut: true }, 'sms_only')).toEqual({ unreachable: 'opted_out' });
    expect(none({ phoneType: 'landline' }, 'sms_only')).toEqual({ unreachable: 'landline_only' });
  });
  it('honours the policy', () => {
    expect(chooseChannel(mobile, 'email_only')).toEqual({ channel: 'email' });
    expect(chooseChannel({ ...mobile, phone: null }, 'sms_only')).toEqual({ unreachable: 'no_contact' });
  });
});

describe('templates', () => {
  const ctx = { carrierName: 'T-Mobile', resetUrl: 'https://t-mobile.com/pin', messageIdDomain: 'x' };
  it('the SMS fits one GSM-7 segment, names the reset link, never carries a PIN', () => {
    const text = smsText(ctx, REFERENCE_EXAMPLE);
    expect(smsSegments(text)).toMatchObject({ encoding: 'GSM-7', segments: 1 });
    expect(text).toContain(ctx.resetUrl);
    expect(text).toMatch(/never ask for your PIN by text/);
    expect(text).not.toMatch(/\d{4,}/);
  });
  it('counts segments like carriers do', () => {
    expect(smsSegments('a'.repeat(160))).toMatchObject({ encoding: 'GSM-7', segments: 1 });
    expect(smsSegments('a'.repeat(161))).toMatchObject({ encoding: 'GSM-7', segments: 2 });
    expect(smsSegments('€'.repeat(80))).toMatchObject({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(smsSegments('a'.repeat(60) + '✓')).toMatchObject({ encoding: 'UCS-2', segments: 1 });
    expect(smsSegments('a'.repeat(70) + '✓')).toMatchObject({ encoding: 'UCS-2', segments: 2 });
  });
  it('rejects a configuration whose SMS would not fit one segment', () => {
    expect(() => assertTemplatesFit(ctx)).not.toThrow();
    expect(() => assertTemplatesFit({ ...ctx, resetUrl: `https://example.com/${'x'.repeat(80)}` })).toThrow(/segments/);
    expect(() => assertTemplatesFit({ ...ctx, carrierName: 'Carrier ✓' })).toThrow(/UCS-2/);
  });
  it('gives each run and account a stable reference and Message-ID', () => {
    expect(referenceIn(smsText(ctx, '0123456789ABCDEF'))).toBe('0123456789ABCDEF');
    expect(referenceIn(emailText(ctx, '0123456789ABCDEF'))).toBe('0123456789ABCDEF');
    // Link shortening rewrites the link, never the reference.
    expect(referenceIn(smsText(ctx, 'FEDCBA9876543210').replace(ctx.resetUrl, 'https://twil.io/abc'))).toBe(
      'FEDCBA9876543210',
    );
    expect(referenceIn('no reference here')).toBeUndefined();
    expect(emailMessageId('r', 7, 'd.example')).toBe('<pinreset.r.7@d.example>');
    expect(emailText(ctx, 'REF')).toContain('Reference: REF');
  });
});

describe('backoff', () => {
  it('grows exponentially with full jitter and a cap', () => {
    expect(backoffMs(THROTTLE_BACKOFF, 1, () => 1)).toBe(500);
    expect(backoffMs(THROTTLE_BACKOFF, 3, () => 1)).toBe(2000);
    expect(backoffMs(THROTTLE_BACKOFF, 20, () => 1)).toBe(10_000);
    expect(backoffMs(THROTTLE_BACKOFF, 3, () => 0)).toBe(0);
  });
});

describe('run parameters', () => {
  it('accepts the defaults', () => expect(paramProblems(DEFAULT_PARAMS)).toEqual([]));
  it('names each bad parameter', () => {
    const problems = paramProblems({
      ...DEFAULT_PARAMS,
      batchSize: 0,
      ratePerSecond: -1,
      policy: 'fax' as never,
      batchConcurrency: 1.5,
    });
    expect(problems.join('\n')).toMatch(/batchSize/);
    expect(problems.join('\n')).toMatch(/ratePerSecond/);
    expect(problems.join('\n')).toMatch(/policy/);
    expect(problems.join('\n')).toMatch(/batchConcurrency/);
  });
  it('checks the delivery settings of a run, naming each', () => {
    expect(paramProblems({ ...DEFAULT_PARAMS, delivery: { deadlineSeconds: 30, retryAfterSeconds: 5 } })).toEqual([]);
    expect(
      paramProblems({
        ...DEFAULT_PARAMS,
        delivery: { deadlineSeconds: -5, retryAfterSeconds: Number.NaN, filteredPauseRate: 1.5 },
      }),
    ).toEqual([
      'deadlineSeconds must be a number from 1 to 172800, got -5',
      'retryAfterSeconds must be a number from 1 to 86400, got null',
      'filteredPauseRate must be a number from 0 to 1, got 1.5',
    ]);
    expect(paramProblems({ ...DEFAULT_PARAMS, delivery: 'soon' as never })).toEqual(['delivery must be an object']);
  });
  it('validates rate updates', () => {
    expect(rateProblems(250)).toEqual([]);
    expect(rateProblems('unlimited')).toEqual([]);
    expect(rateProblems(MIN_RATE)).toEqual([]);
    // 0 is the natural gesture to stop, so it must not mean "unlimited": refused, naming both ways out.
    expect(rateProblems(0)).toEqual([
      `a rate of 0 is not accepted: to stop sending, pause the run; for no ceiling, use 'unlimited'`,
    ]);
    // The bug seen by an operator: 0.001 was accepted and left every send waiting ~17 minutes.
    expect(rateProblems(0.001)[0]).toMatch(/at least 0.2 messages\/s .*pause the run/);
    expect(rateProblems(-1)).toHaveLength(1);
    expect(rateProblems(Infinity)).toHaveLength(1);
    expect(rateProblems('100')).toHaveLength(1);
  });
  it('sizes limiter reservations to ~50 ms of traffic', () => {
    expect(blockSize(1)).toBe(1);
    expect(blockSize(200)).toBe(10);
    expect(blockSize(100_000)).toBe(50);
    expect(blockSize(Infinity)).toBe(50);
  });
});
