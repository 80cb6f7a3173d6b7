// Temporal connection options from config: plain, TLS, mTLS or API key.
import { readFile } from 'node:fs/promises';
import type { TemporalConfig } from '../config';

export interface ConnectionOptionsLike {
  address: string;
  tls?: { serverNameOverride?: string; serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer } } | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

export async function connectionOptions(t: TemporalConfig): Promise<ConnectionOptionsLike> {
  const opts: ConnectionOptionsLike = { address: t.address };
  if (t.tls) {
    opts.tls = {
      serverNameOverride: t.tls.serverName,
      serverRootCACertificate: t.tls.caPath ? await readFile(t.tls.caPath) : undefined,
      clientCertPair: t.tls.certPath && t.tls.keyPath ? { crt: await readFile(t.tls.certPath), key: await readFile(t.tls.keyPath) } : undefined,
    };
  }
  if (t.apiKey) {
    opts.apiKey = t.apiKey;
    opts.tls ??= true;
  }
  return opts;
}
