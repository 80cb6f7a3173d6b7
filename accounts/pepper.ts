// The PIN pepper: a secret key kept outside the database (environment / secret store), so a
// database dump alone does not allow brute-forcing the short PINs.
//   PIN_PEPPER     hex (64+ digits) or base64 of at least 32 random bytes
//   PIN_PEPPER_ID  short label stored with each verifier, e.g. v1 (default), for rotation
export interface Pepper {
  key: Buffer;
  id: string;
}

export function loadPepper(env: Record<string, string | undefined> = process.env): Pepper | undefined {
  const raw = env.PIN_PEPPER?.trim();
  if (!raw) return undefined;
  const key = /^[0-9a-fA-F]+$/.test(raw) && raw.length % 2 === 0 ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  // The value itself is never echoed.
  if (key.length < 32) throw new Error('PIN_PEPPER must encode at least 32 bytes (hex or base64)');
  const id = env.PIN_PEPPER_ID?.trim() || 'v1';
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(id)) throw new Error('PIN_PEPPER_ID must be 1-32 characters of A-Z a-z 0-9 . _ -');
  return { key, id };
}
