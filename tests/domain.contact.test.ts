import { describe, expect, it } from 'vitest';
import { isE164, isMobileCapable, normalizePhone } from '../domain/phone';
import { validateEmail } from '../domain/email';

const e164 = (raw: string, opts?: Parameters<typeof normalizePhone>[1]) => {
  const r = normalizePhone(raw, opts);
  return 'e164' in r ? r.e164 : `error: ${r.error}`;
};

describe('normalizePhone', () => {
  it.each([
    ['+1 (212) 555-0123', '+12125550123'],
    ['212-555-0123', '+12125550123'],
    ['(212) 555-0123', '+12125550123'],
    ['212.555.0123', '+12125550123'],
    ['2125550123', '+12125550123'],
    ['1-212-555-0123', '+12125550123'],
    ['1 212 555 0123', '+12125550123'],
    ['+12125550123', '+12125550123'],
    ['  +1 212 555 0123  ', '+12125550123'],
    ['0012125550123', '+12125550123'],
    ['011 44 20 7946 0958', '+442079460958'],
    ['+44 20 7946 0958', '+442079460958'],
    ['+44 (0)20 7946 0958', '+442079460958'],
    ['0044 20 7946 0958', '+442079460958'],
    ['+49 30 901820', '+4930901820'],
    ['+86 138 0013 8000', '+8613800138000'],
  ])('normalizes %s', (raw, want) => {
    expect(e164(raw)).toBe(want);
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['n/a', 'contains letters'],
    ['212-555-CALL', 'contains letters'],
    ['(212) 555-0123 ext. 12', 'contains letters'],
    ['212#555#0123', 'contains characters'],
    ['555-0123', 'too short'],
    ['+1 212 555', 'too short'],
    ['+44 20', 'too short'],
    ['212555012345', 'too long'],
    ['+1 212 555 01234', 'too long'],
    ['+4420794609581234', 'too long'],
    ['000-000-0000', 'area code'],
    ['112-555-0123', 'area code'],
    ['212-055-0123', 'exchange code'],
    ['212-155-0123', 'exchange code'],
    // The brief's "+1 (555) 010-1234" has exchange 010: not a dialable NANP number.
    ['+1 (555) 010-1234', 'exchange code'],
    ['555-010-1234', 'exchange code'],
    ['0015550101234', 'exchange code'],
    ['+0 123 456 7890', 'country code'],
    ['12+12125550123', 'contains characters'],
    ['1'.repeat(41), 'too long'],
  ])('rejects %j (%s)', (raw, why) => {
    expect(e164(raw)).toMatch(new RegExp(`^error: .*${why}`));
  });

  it('needs a country code when no default country is set', () => {
    expect(e164('212-555-0123', { defaultCountry: null })).toBe('error: no country code');
    expect(e164('+1 212 555 0123', { defaultCountry: null })).toBe('+12125550123');
  });

  it('never echoes the input in an error', () => {
    for (const raw of ['555-0123', 'call 2125550123', '212-055-0123', '+99999999999999999']) {
      const r = normalizePhone(raw);
      expect('error' in r && !r.error.includes(raw) && !/\d{4}/.test(r.error)).toBe(true);
    }
  });

  it('isE164 accepts exactly what normalizePhone produces', () => {
    expect(isE164('+12125550123')).toBe(true);
    expect(isE164('+442079460958')).toBe(true);
    expect(isE164('+12120550123')).toBe(false);
    expect(isE164('+1212555012')).toBe(false);
    expect(isE164('212-555-0123')).toBe(false);
    expect(isE164('+1 212 555 0123')).toBe(false);
  });
});

describe('isMobileCapable', () => {
  it('rules out only known landlines', () => {
    expect(isMobileCapable('mobile')).toBe(true);
    expect(isMobileCapable('voip')).toBe(true);
    expect(isMobileCapable('unknown')).toBe(true);
    expect(isMobileCapable(null)).toBe(true);
    expect(isMobileCapable(undefined)).toBe(true);
    expect(isMobileCapable('landline')).toBe(false);
  });
});

describe('validateEmail', () => {
  const ok = (raw: string) => {
    const r = validateEmail(raw);
    return 'email' in r ? r.email : `error: ${r.error}`;
  };

  it.each([
    ['jane.doe@example.com', 'jane.doe@example.com'],
    ['jane+prepaid@example.com', 'jane+prepaid@example.com'],
    ['jane+a+b@mail.example.co.uk', 'jane+a+b@mail.example.co.uk'],
    ['  Jane.Doe@Example.COM ', 'Jane.Doe@example.com'],
    ["o'brien@example.com", "o'brien@example.com"],
    ['user_name-1@sub-domain.example.org', 'user_name-1@sub-domain.example.org'],
    ['jose@bücher.example', 'jose@bücher.example'],
    ['user@例え.テスト', 'user@例え.テスト'],
    ['user@пример.испытание', 'user@пример.испытание'],
    ['josé@example.com', 'josé@example.com'],
    ['用户@例子.广告', '用户@例子.广告'],
    ['user@xn--bcher-kva.example', 'user@xn--bcher-kva.example'],
  ])('accepts %s', (raw, want) => {
    expect(ok(raw)).toBe(want);
  });

  it.each([
    ['', 'empty'],
    ['jane.example.com', 'missing @'],
    ['jane@@example.com', 'more than one @'],
    ['jane@doe@example.com', 'more than one @'],
    ['jane doe@example.com', 'spaces'],
    ['jane@exam ple.com', 'spaces'],
    ['jane\t@example.com', 'spaces'],
    ['jane..doe@example.com', 'double dot'],
    ['jane@example..com', 'double dot'],
    ['.jane@example.com', 'dot'],
    ['jane.@example.com', 'dot'],
    ['jane@.example.com', 'dot'],
    ['jane@example.com.', 'dot'],
    ['@example.com', 'empty local part'],
    ['jane@', 'empty domain'],
    ['jane@example', 'no top-level domain'],
    ['jane@localhost', 'no top-level domain'],
    ['jane@example.c', 'top-level domain'],
    ['jane@example.123', 'domain'],
    ['jane@-example.com', 'invalid domain'],
    ['jane@exa_mple.com', 'invalid domain'],
    ['jane@[192.168.0.1]', 'domain'],
    ['<jane@example.com>', 'forbidden'],
    ['jane,doe@example.com', 'forbidden'],
    ['"jane"@example.com', 'forbidden'],
    [`${'a'.repeat(65)}@example.com`, 'local part too long'],
    [`a@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(63)}.com`, 'too long'],
  ])('rejects %j (%s)', (raw, why) => {
    expect(ok(raw)).toMatch(new RegExp(`^error: .*${why}`));
  });

  it('accepts exactly 254 characters and rejects 255', () => {
    const domain = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(57)}.com`; // 189 chars
    const at254 = `${'a'.repeat(64)}@${domain}`;
    expect(at254.length).toBe(254);
    expect(ok(at254)).toBe(at254);
    expect(ok(`${at254.slice(0, 65)}f${at254.slice(65)}`)).toBe('error: too long');
  });

  it('never echoes the input in an error', () => {
    for (const raw of ['secret.person@@example.com', 'secret person@example.com', 'secret..person@example.com']) {
      const r = validateEmail(raw);
      expect('error' in r && !r.error.includes('secret')).toBe(true);
    }
  });
});
