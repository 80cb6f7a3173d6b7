// A pragmatic email address check: catches the dirt found in customer records (no "@", spaces,
// double dots, truncated domains) without rejecting real addresses such as plus-tags or
// internationalized (IDN / SMTPUTF8) ones. Pure; errors never echo the address.
import { domainToASCII } from 'node:url';

export type EmailResult = { email: string } | { error: string };

/** RFC 5321 path limit. */
const MAX_LENGTH = 254;
const MAX_LOCAL_OCTETS = 64;
/** Characters that are only legal inside a quoted local part, which real customer records never use. */
const LOCAL_FORBIDDEN = /[()<>[\]\\,;:"@]/u;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function validateEmail(raw: string | null | undefined): EmailResult {
  const text = (raw ?? '').trim().normalize('NFC');
  if (text === '') return { error: 'empty' };
  if (text.length > MAX_LENGTH) return { error: 'too long' };
  if (/[\s\p{Cc}]/u.test(text)) return { error: 'contains spaces or control characters' };
  const at = text.indexOf('@');
  if (at < 0) return { error: 'missing @' };
  if (text.indexOf('@', at + 1) >= 0) return { error: 'more than one @' };

  const local = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (local === '') return { error: 'empty local part' };
  if (Buffer.byteLength(local, 'utf8') > MAX_LOCAL_OCTETS) return { error: 'local part too long' };
  if (LOCAL_FORBIDDEN.test(local)) return { error: 'local part contains forbidden characters' };
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return { error: 'misplaced or double dot' };

  if (domain === '') return { error: 'empty domain' };
  if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..'))
    return { error: 'misplaced or double dot' };
  const domainError = checkDomain(domain);
  if (domainError) return { error: domainError };

  // Domains are case-insensitive: store them lower-case (in their Unicode form, as written).
  return { email: `${local}@${domain.toLowerCase()}` };
}

/** Verdicts on recent domains: a customer file repeats a few thousand domains many times over. */
const domainVerdicts = new Map<string, string>();
const DOMAIN_CACHE_MAX = 10_000;

/** '' when the domain is valid, else the reason. */
function checkDomain(domain: string): string {
  const cached = domainVerdicts.get(domain);
  if (cached !== undefined) return cached;
  const verdict = judgeDomain(domain);
  if (domainVerdicts.size >= DOMAIN_CACHE_MAX) domainVerdicts.clear();
  domainVerdicts.set(domain, verdict);
  return verdict;
}

function judgeDomain(domain: string): string {
  // The WHATWG IDNA mapping lower-cases and punycodes; it returns '' for a domain it cannot map.
  const ascii = domainToASCII(domain);
  if (ascii === '') return 'invalid domain';
  const labels = ascii.split('.');
  if (labels.length < 2) return 'domain has no top-level domain';
  if (!labels.every((l) => LABEL.test(l))) return 'invalid domain';
  const tld = labels[labels.length - 1];
  if (!/^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/.test(tld)) return 'invalid top-level domain';
  return '';
}
