import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_SCRYPT,
  formatAlgo,
  hashPin,
  isValidPinFormat,
  parseAlgo,
  verifyPin,
  type ScryptParams,
} from '../domain/pin';

// Small cost keeps the test fast; the production parameters are checked once below.
const FAST: ScryptParams = { N: 1024, r: 8, p: 1 };
const pepper = randomBytes(32);
const peppers = { v1: pepper };

describe('hashPin / verifyPin', () => {
  it('verifies the right PIN and rejects others', async () => {
    const v = await hashPin('4821', pepper, 'v1', { params: FAST });
    expect(v.salt).toHaveLength(16);
    expect(v.hash).toHaveLength(32);
    expect(v.algo).toBe('scrypt:N=1024,r=8,p=1;pepper=v1');
    expect(await verifyPin('4821', v, peppers)).toBe(true);
    expect(await verifyPin('4822', v, peppers)).toBe(false);
    expect(await verifyPin('04821', v, peppers)).toBe(false);
  });

  it('salts every verifier: the same PIN gives different hashes', async () => {
    const a = await hashPin('1234', pepper, 'v1', { params: FAST });
    const b = await hashPin('1234', pepper, 'v1', { params: FAST });
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.hash.equals(b.hash)).toBe(false);
  });

  it('depends on the pepper: a database dump without it verifies nothing', async () => {
    const salt = randomBytes(16);
    const a = await hashPin('1234', pepper, 'v1', { params: FAST, salt });
    const b = await hashPin('1234', randomBytes(32), 'v1', { params: FAST, salt });
    expect(a.hash.equals(b.hash)).toBe(false);
    expect(await verifyPin('1234', a, { v1: randomBytes(32) })).toBe(false);
    expect(await verifyPin('1234', a, {})).toBe(false);
  });

  it('verifies under the parameters and pepper recorded in algo (rotation)', async () => {
    const old = await hashPin('987654', pepper, 'v1', { params: { N: 512, r: 4, p: 1 } });
    const pepper2 = randomBytes(48);
    const cur = await hashPin('987654', pepper2, 'v2', { params: FAST });
    const both = { v1: pepper, v2: pepper2 };
    expect(await verifyPin('987654', old, both)).toBe(true);
    expect(await verifyPin('987654', cur, both)).toBe(true);
    expect(await verifyPin('987654', cur, { v1: pepper })).toBe(false);
  });

  it('never verifies synthetic or unparseable verifiers', async () => {
    const synthetic = { hash: randomBytes(32), salt: randomBytes(16), algo: 'synthetic' };
    expect(await verifyPin('1234', synthetic, peppers)).toBe(false);
    expect(parseAlgo('scrypt:N=1000,r=8,p=1;pepper=v1')).toBeNull(); // N not a power of two
    expect(parseAlgo('scrypt:N=4194304,r=8,p=1;pepper=v1')).toBeNull(); // above the memory cap
    expect(parseAlgo(formatAlgo(DEFAULT_SCRYPT, 'v1'))).toEqual({ params: DEFAULT_SCRYPT, pepperId: 'v1' });
  });

  it('refuses a short pepper or a malformed pepper id', async () => {
    await expect(hashPin('1234', randomBytes(16), 'v1', { params: FAST })).rejects.toThrow(/pepper/);
    await expect(hashPin('1234', pepper, 'bad id;x', { params: FAST })).rejects.toThrow(/pepper id/);
  });

  it('uses OWASP scrypt parameters by default (N=2^17, r=8, p=1)', async () => {
    const v = await hashPin('2468', pepper, 'v1');
    expect(v.algo).toBe('scrypt:N=131072,r=8,p=1;pepper=v1');
    expect(await verifyPin('2468', v, peppers)).toBe(true);
  });

  it('accepts 4-12 digit PINs only', () => {
    for (const p of ['1234', '000000', '123456789012']) expect(isValidPinFormat(p)).toBe(true);
    for (const p of ['123', '1234567890123', '12a4', ' 1234', '', '١٢٣٤']) expect(isValidPinFormat(p)).toBe(false);
  });
});
