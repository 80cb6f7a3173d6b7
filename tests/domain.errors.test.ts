// The pure provider-failure classifiers, on plain fields.
import { describe, expect, it } from 'vitest';
import { classifyEmailError, isEmailConfigError } from '../domain/email-errors';
import { classifySmsError, isSmsConfigError } from '../domain/sms-errors';

describe('classifySmsError', () => {
  it.each([
    [{ status: 429, twilioCode: 20429 }, 'rate_limited', '20429'],
    [{ status: 429 }, 'rate_limited', 'http_429'],
    [{ status: 400, twilioCode: 21611 }, 'rate_limited', '21611'],
    [{ status: 400, twilioCode: 21211 }, 'permanent', '21211'],
    [{ status: 400, twilioCode: 21610 }, 'permanent', '21610'],
    [{ status: 400, twilioCode: 21614 }, 'permanent', '21614'],
    [{ status: 400, twilioCode: 21635 }, 'permanent', '21635'],
    [{ status: 400, twilioCode: 30005 }, 'permanent', '30005'],
    [{ status: 400, twilioCode: 30006 }, 'permanent', '30006'],
    [{ status: 400, twilioCode: 30007 }, 'permanent', '30007'],
    [{ status: 400, twilioCode: 21612 }, 'permanent', '21612'],
    [{ status: 400, twilioCode: 21408 }, 'permanent', '21408'],
    [{ status: 400, twilioCode: 21606 }, 'permanent', '21606'],
    [{ status: 400, twilioCode: 21999 }, 'permanent', '21999'],
    [{ status: 400 }, 'permanent', 'http_400'],
    [{ status: 401, twilioCode: 20003 }, 'permanent', '20003'],
    [{ status: 403 }, 'permanent', 'http_403'],
    [{ status: 500, twilioCode: 20500 }, 'ambiguous', 'http_500'],
    [{ status: 503 }, 'ambiguous', 'http_503'],
    [{ errno: 'ECONNREFUSED' }, 'transient', 'ECONNREFUSED'],
    [{ errno: 'ENOTFOUND' }, 'transient', 'ENOTFOUND'],
    [{ errno: 'ECONNRESET' }, 'ambiguous', 'ECONNRESET'],
    [{ errno: 'ETIMEDOUT' }, 'ambiguous', 'ETIMEDOUT'],
    [{ errno: 'ECONNABORTED' }, 'ambiguous', 'ECONNABORTED'],
    [{ errno: 'EPIPE' }, 'ambiguous', 'EPIPE'],
    [{}, 'ambiguous', 'unknown'],
  ] as const)('%j -> %s %s', (fields, kind, code) => {
    expect(classifySmsError(fields)).toEqual({ kind, code });
  });

  it('flags configuration errors so a run can stop instead of failing every customer', () => {
    expect(isSmsConfigError(classifySmsError({ status: 401, twilioCode: 20003 }))).toBe(true);
    expect(isSmsConfigError(classifySmsError({ status: 400, twilioCode: 21606 }))).toBe(true);
    expect(isSmsConfigError(classifySmsError({ status: 400, twilioCode: 21211 }))).toBe(false);
    expect(isSmsConfigError(classifySmsError({ errno: 'ECONNRESET' }))).toBe(false);
  });
});

describe('classifyEmailError', () => {
  it.each([
    [{ code: 'EMESSAGE', responseCode: 451 }, 'transient', 'smtp_451'],
    [{ code: 'EENVELOPE', responseCode: 450 }, 'transient', 'smtp_450'],
    [{ code: 'ECONNECTION', responseCode: 421 }, 'transient', 'smtp_421'],
    [{ code: 'EENVELOPE', responseCode: 550 }, 'permanent', 'smtp_550'],
    [{ code: 'EMESSAGE', responseCode: 554 }, 'permanent', 'smtp_554'],
    [{ code: 'EAUTH', responseCode: 535 }, 'permanent', 'smtp_535'],
    [{ code: 'ESOCKET', originalCode: 'ECONNREFUSED' }, 'transient', 'ECONNREFUSED'],
    [{ code: 'EDNS' }, 'transient', 'EDNS'],
    [{ code: 'ECONNECTION' }, 'ambiguous', 'ECONNECTION'],
    [{ code: 'ETIMEDOUT' }, 'ambiguous', 'ETIMEDOUT'],
    [{ code: 'ESOCKET', originalCode: 'ECONNRESET' }, 'ambiguous', 'ESOCKET'],
    [{ code: 'EENVELOPE' }, 'ambiguous', 'EENVELOPE'],
    [{ code: 'ENOAUTH' }, 'permanent', 'ENOAUTH'],
    [{}, 'ambiguous', 'unknown'],
  ] as const)('%j -> %s %s', (fields, kind, code) => {
    expect(classifyEmailError(fields)).toEqual({ kind, code });
  });

  it('flags relay configuration errors', () => {
    expect(isEmailConfigError(classifyEmailError({ code: 'EAUTH', responseCode: 535 }))).toBe(true);
    expect(isEmailConfigError(classifyEmailError({ code: 'EENVELOPE', responseCode: 550 }))).toBe(false);
  });
});
