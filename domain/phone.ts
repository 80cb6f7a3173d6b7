// Phone numbers to E.164. Pure: no I/O, no logging. Errors describe the problem, never echo the
// number (it is customer data).

export type PhoneResult = { e164: string } | { error: string };

export interface PhoneOptions {
  /** Country assumed for numbers written without a country code. Only NANP ('US') is supported. */
  defaultCountry?: 'US' | null;
}

/** Longest input worth parsing: real numbers with separators and a "+" fit easily. */
const MAX_RAW_LENGTH = 40;
/** E.164 allows at most 15 digits; fewer than 8 is no real international number. */
const E164_MIN_DIGITS = 8;
const E164_MAX_DIGITS = 15;

export function normalizePhone(raw: string | null | undefined, opts: PhoneOptions = {}): PhoneResult {
  const defaultCountry = opts.defaultCountry === undefined ? 'US' : opts.defaultCountry;
  const text = (raw ?? '').trim();
  if (text === '') return { error: 'empty' };
  if (text.length > MAX_RAW_LENGTH) return { error: 'too long' };
  if (/\p{L}/u.test(text)) return { error: 'contains letters' };
  if (!/^\+?[\d\s\-.()]+$/.test(text))
    return { error: 'contains characters other than digits, spaces, - . ( ) and a leading +' };

  // "+44 (0)20 ..." writes the national trunk prefix in brackets: it is not dialled from abroad.
  const withoutTrunk = text.startsWith('+') ? text.replace(/\(0\)/g, '') : text;
  let digits = withoutTrunk.replace(/[\s\-.()]/g, '');
  let international = digits.startsWith('+');
  if (international) digits = digits.slice(1);
  else if (digits.startsWith('00') && digits.length > 10) {
    // International call prefix used in most of the world ("00 1 212 ..."); ten digits are a
    // North American national number (however malformed) instead.
    digits = digits.slice(2);
    international = true;
  } else if (digits.startsWith('011') && digits.length > 11) {
    // NANP international call prefix; an 11-digit "011..." is a malformed national number instead.
    digits = digits.slice(3);
    international = true;
  }
  if (digits === '') return { error: 'no digits' };

  if (international) {
    if (digits.startsWith('0')) return { error: 'country code cannot start with 0' };
    if (digits.startsWith('1')) return nanp(digits.slice(1));
    if (digits.length < E164_MIN_DIGITS) return { error: 'too short' };
    if (digits.length > E164_MAX_DIGITS) return { error: 'too long' };
    return { e164: `+${digits}` };
  }

  if (defaultCountry !== 'US') return { error: 'no country code' };
  if (digits.length === 11 && digits.startsWith('1')) return nanp(digits.slice(1));
  if (digits.length === 10) return nanp(digits);
  return { error: digits.length < 10 ? 'too short' : 'too long' };
}

/** National significant number of the North American Numbering Plan: NXX-NXX-XXXX. */
function nanp(national: string): PhoneResult {
  if (national.length < 10) return { error: 'too short' };
  if (national.length > 10) return { error: 'too long' };
  if (national[0] === '0' || national[0] === '1') return { error: 'area code cannot start with 0 or 1' };
  if (national[3] === '0' || national[3] === '1') return { error: 'exchange code cannot start with 0 or 1' };
  return { e164: `+1${national}` };
}

/** True when a string is already a normalized E.164 number as normalizePhone produces. */
export function isE164(value: string): boolean {
  return /^\+[1-9]\d{7,14}$/.test(value) && (!value.startsWith('+1') || 'e164' in normalizePhone(value));
}

export const PHONE_TYPES = ['mobile', 'landline', 'voip', 'unknown'] as const;
export type PhoneType = (typeof PHONE_TYPES)[number];

export function isPhoneType(value: string): value is PhoneType {
  return (PHONE_TYPES as readonly string[]).includes(value);
}

/**
 * Whether an SMS is worth attempting for this line type. Only a known landline is ruled out: VoIP
 * numbers usually take SMS, and for an unknown or unrecorded type the provider's permanent refusal
 * is cheap and triggers the email fallback, whereas skipping would leave a reachable customer
 * un-notified.
 */
export function isMobileCapable(phoneType: string | null | undefined): boolean {
  return phoneType !== 'landline';
}
