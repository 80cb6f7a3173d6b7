// Temporal connection options from config: plain, TLS, mTLS or API key.
import { readFile } from 'node:fs/promises';
import type { TemporalConfig } from '../config';

export interface ConnectionOptionsLike {
  address: string;
  tls?:
    | { serverNameOverride?: string; serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer } }
    | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

export async function connectionOptions(t: TemporalConfig): Promise<ConnectionOptionsLike> {
  const opts: ConnectionOptionsLike = { address: t.address };
  if (t.tls) {
    opts.tls = {
      serverNameOverride: t.tls.serverName,
      serverRootCACertificate: t.tls.caPath ? await readFile(t.tls.caPath) : undefined,
      clientCertPair:
        t.tls.certPath && t.tls.keyPath
          ? { crt: await readFile(t.tls.certPath), key: await readFile(t.tls.keyPath) }
          : undefined,
    };
  }
  if (t.apiKey) {
    opts.apiKey = t.apiKey;
    opts.tls ??= true;
  }
  return opts;
}

export interface ConnectRetryOptions {
  /** Give up after this long (default 120 s). */
  deadlineMs?: number;
  /** First pause between attempts; doubles up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Stop retrying (e.g. SIGTERM during start-up). */
  stopped?: () => boolean;
  onRetry?: (attempt: number, delayMs: number, error: Error) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/**
 * A worker that starts while the Temporal server is down or restarting (a rolling upgrade, or a
 * worker restarted in the same minute as the server: the chaos run) waits for it instead of
 * exiting. Only transport errors are retried: anything else (a bad API key, a missing
 * namespace) fails at once.
 */
export async function connectWithRetry<T>(connect: () => Promise<T>, o: ConnectRetryOptions = {}): Promise<T> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + (o.deadlineMs ?? 120_000);
  let delay = o.initialDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      if (e.name !== 'TransportError' || o.stopped?.() || now() + delay > deadline) throw e;
      o.onRetry?.(attempt, delay, e);
      await sleep(delay);
      delay = Math.min(delay * 2, o.maxDelayMs ?? 5_000);
    }
  }
}
