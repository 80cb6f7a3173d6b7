// PIN verifiers (NIST SP 800-63B §5.1.1.2, OWASP Password Storage): a PIN has little entropy, so
// the verifier is keyed with a secret pepper (HMAC-SHA256, key held outside the database: a dump
// alone cannot be brute-forced) and then stretched with a memory-hard KDF (scrypt) under a
// per-account random salt. `algo` records every parameter and the pepper's id, so verifiers made
// under older parameters or a rotated pepper stay verifiable.
import { createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** OWASP's scrypt recommendation (2^17, 8, 1): about 128 MiB and ~0.5 s per PIN on one core here. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };
export const SALT_BYTES = 16;
export const HASH_BYTES = 32;
/** Verifiers of seeded demo accounts: random bytes that no PIN matches. */
export const SYNTHETIC_ALGO = 'synthetic';
/** Refuse to run parameters read back from the database beyond this (a corrupt row must not exhaust memory). */
const MAX_N = 2 ** 20;
const MIN_PEPPER_BYTES = 32;

export interface PinVerifier {
  hash: Buffer;
  salt: Buffer;
  algo: string;
}

export interface HashPinOptions {
  /** Lower-cost parameters for tests only; production uses DEFAULT_SCRYPT. */
  params?: ScryptParams;
  /** Fixed salt for known-answer tests only. */
  salt?: Buffer;
}

/** PINs are all-digit and short; anything else is not a PIN this carrier issues. */
export function isValidPinFormat(pin: string): boolean {
  return /^\d{4,12}$/.test(pin);
}

export async function hashPin(
  pin: string,
  pepper: Buffer,
  pepperId: string,
  opts: HashPinOptions = {},
): Promise<PinVerifier> {
  checkPepper(pepper, pepperId);
  const params = opts.params ?? DEFAULT_SCRYPT;
  checkParams(params);
  const salt = opts.salt ?? randomBytes(SALT_BYTES);
  const hash = await stretch(pepperPin(pin, pepper), salt, params);
  return { hash, salt, algo: formatAlgo(params, pepperId) };
}

/**
 * Checks a PIN against a stored verifier. `peppers` maps pepper id to key (several during a
 * rotation). False for a wrong PIN, a synthetic or unknown verifier, or a pepper id not given.
 */
export async function verifyPin(pin: string, verifier: PinVerifier, peppers: Record<string, Buffer>): Promise<boolean> {
  const parsed = parseAlgo(verifier.algo);
  if (!parsed) return false;
  const pepper = Object.prototype.hasOwnProperty.call(peppers, parsed.pepperId) ? peppers[parsed.pepperId] : undefined;
  if (!pepper) return false;
  checkPepper(pepper, parsed.pepperId);
  const hash = await stretch(pepperPin(pin, pepper), verifier.salt, parsed.params, verifier.hash.length);
  return hash.length === verifier.hash.length && timingSafeEqual(hash, verifier.hash);
}

export function formatAlgo(params: ScryptParams, pepperId: string): string {
  return `scrypt:N=${params.N},r=${params.r},p=${params.p};pepper=${pepperId}`;
}

/** Parses an `algo` written by formatAlgo; null for anything else (e.g. 'synthetic'). */
export function parseAlgo(algo: string): { params: ScryptParams; pepperId: string } | null {
  const m = /^scrypt:N=(\d+),r=(\d+),p=(\d+);pepper=([A-Za-z0-9._-]{1,32})$/.exec(algo);
  if (!m) return null;
  const params = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  try {
    checkParams(params);
  } catch {
    return null;
  }
  return { params, pepperId: m[4] };
}

function pepperPin(pin: string, pepper: Buffer): Buffer {
  return createHmac('sha256', pepper).update(pin, 'utf8').digest();
}

function stretch(key: Buffer, salt: Buffer, params: ScryptParams, length = HASH_BYTES): Promise<Buffer> {
  // Node's default maxmem (32 MiB) is below what N=2^17, r=8 needs (128 * N * r = 128 MiB).
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: 128 * params.N * params.r * params.p + 16 * 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scryptCb(key, salt, length, options, (err, derived) => (err ? reject(err) : resolve(derived)));
  });
}

function checkParams(p: ScryptParams): void {
  const powerOfTwo = Number.isInteger(p.N) && p.N >= 2 && (p.N & (p.N - 1)) === 0;
  if (
    !powerOfTwo ||
    p.N > MAX_N ||
    !Number.isInteger(p.r) ||
    p.r < 1 ||
    p.r > 32 ||
    !Number.isInteger(p.p) ||
    p.p < 1 ||
    p.p > 16
  ) {
    throw new Error('invalid scrypt parameters');
  }
}

function checkPepper(pepper: Buffer, pepperId: string): void {
  if (pepper.length < MIN_PEPPER_BYTES) throw new Error(`pepper must be at least ${MIN_PEPPER_BYTES} bytes`);
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(pepperId))
    throw new Error('pepper id must be 1-32 characters of A-Z a-z 0-9 . _ -');
}
