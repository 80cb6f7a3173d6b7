// Production settings of the Temporal connection (workers/connection.ts): plain for the local
// stack, server TLS with a private CA, mTLS with a client certificate, or an API key (Temporal
// Cloud), from the same environment variables config/index.ts reads. Certificates are read from
// files in a temporary directory.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config';
import { freePort } from '../stack/ports';
import { connectionOptions, connectWithRetry } from '../workers/connection';

const BASE = { TEMPORAL_ADDRESS: 'temporal.example.internal:7233' };
const pem = (what: string) => `-----BEGIN ${what}-----\nMIIBdummy${what.replace(/\W/g, '')}\n-----END ${what}-----\n`;

describe('connectionOptions', () => {
  let dir: string;
  let ca: string;
  let cert: string;
  let key: string;
  const temporal = (env: Record<string, string>) => loadConfig({ ...BASE, ...env }, ['temporal']).temporal;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pinreset-tls-'));
    [ca, cert, key] = ['ca.pem', 'client.pem', 'client.key'].map((f) => path.join(dir, f));
    await writeFile(ca, pem('CERTIFICATE'));
    await writeFile(cert, pem('CERTIFICATE'));
    await writeFile(key, pem('PRIVATE KEY'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is plain for the local stack', async () => {
    expect(await connectionOptions(temporal({}))).toEqual({ address: BASE.TEMPORAL_ADDRESS });
  });

  it('uses TLS with the system roots when only TEMPORAL_TLS=true', async () => {
    const o = await connectionOptions(temporal({ TEMPORAL_TLS: 'true' }));
    expect(o.address).toBe(BASE.TEMPORAL_ADDRESS);
    expect(o.tls).toEqual({
      serverNameOverride: undefined,
      serverRootCACertificate: undefined,
      clientCertPair: undefined,
    });
    expect(o.apiKey).toBeUndefined();
  });

  it('trusts a private CA and overrides the server name', async () => {
    const o = await connectionOptions(temporal({ TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' }));
    expect(o.tls).toMatchObject({ serverNameOverride: 'temporal.internal', clientCertPair: undefined });
    const tls = o.tls as { serverRootCACertificate: Buffer };
    expect(Buffer.isBuffer(tls.serverRootCACertificate)).toBe(true);
    expect(tls.serverRootCACertificate.toString()).toBe(pem('CERTIFICATE'));
  });

  it('presents a client certificate for mTLS (cert and key read from files)', async () => {
    const o = await connectionOptions(
      temporal({ TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_CA: ca }),
    );
    const tls = o.tls as { clientCertPair: { crt: Buffer; key: Buffer }; serverRootCACertificate: Buffer };
    expect(tls.clientCertPair.crt.toString()).toBe(pem('CERTIFICATE'));
    expect(tls.clientCertPair.key.toString()).toBe(pem('PRIVATE KEY'));
    expect(tls.serverRootCACertificate.toString()).toBe(pem('CERTIFICATE'));
    // mTLS without TEMPORAL_TLS=true: a client certificate implies TLS.
    expect(o.tls).toBeTypeOf('object');
  });

  it('refuses half an mTLS pair', () => {
    expect(() => temporal({ TEMPORAL_TLS_CERT: cert })).toThrow(ConfigError);
    expect(() => temporal({ TEMPORAL_TLS_KEY: key })).toThrow(
      /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/,
    );
  });

  it('fails with the path when a certificate file cannot be read', async () => {
    const missing = path.join(dir, 'missing.pem');
    await expect(connectionOptions(temporal({ TEMPORAL_TLS_CA: missing }))).rejects.toThrow(missing);
    await expect(connectionOptions(temporal({ TEMPORAL_TLS_CERT: missing, TEMPORAL_TLS_KEY: key }))).rejects.toThrow(
      missing,
    );
  });

  it('sends an API key over TLS (Temporal Cloud)', async () => {
    const o = await connectionOptions(temporal({ TEMPORAL_API_KEY: 'key-123', TEMPORAL_NAMESPACE: 'pinreset.a1b2c' }));
    expect(o).toEqual({ address: BASE.TEMPORAL_ADDRESS, apiKey: 'key-123', tls: true });
    // With TLS settings too, they are kept (a private CA in front of a self-hosted server, say).
    const withCa = await connectionOptions(temporal({ TEMPORAL_API_KEY: 'key-123', TEMPORAL_TLS_CA: ca }));
    expect(withCa.apiKey).toBe('key-123');
    expect((withCa.tls as { serverRootCACertificate: Buffer }).serverRootCACertificate.toString()).toBe(
      pem('CERTIFICATE'),
    );
  });

  it('gives options NativeConnection accepts', async () => {
    // Type-level check: the shape is what @temporalio/worker expects.
    type Accepts = Parameters<typeof import('@temporalio/worker').NativeConnection.connect>[0];
    const o: Accepts = await connectionOptions(temporal({ TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key }));
    expect(o).toBeDefined();
  });
});

describe('connectWithRetry: a worker started while the Temporal server is down waits for it', () => {
  const transportError = () => Object.assign(new Error('tcp connect error'), { name: 'TransportError' });

  it('retries transport errors with a doubling pause, then connects', async () => {
    let calls = 0;
    const pauses: number[] = [];
    const got = await connectWithRetry(
      async () => {
        if (++calls < 4) throw transportError();
        return 'connected';
      },
      { initialDelayMs: 10, maxDelayMs: 25, sleep: async (ms) => void pauses.push(ms) },
    );
    expect(got).toBe('connected');
    expect(pauses).toEqual([10, 20, 25]);
  });

  it('fails at once on anything but a transport error, or when the worker is being stopped', async () => {
    let calls = 0;
    await expect(
      connectWithRetry(
        async () => {
          calls++;
          throw new Error('Namespace pinreset is not found');
        },
        { sleep: async () => undefined },
      ),
    ).rejects.toThrow(/not found/);
    expect(calls).toBe(1);
    await expect(
      connectWithRetry(
        async () => {
          calls++;
          throw transportError();
        },
        { stopped: () => true, sleep: async () => undefined },
      ),
    ).rejects.toThrow(/tcp connect/);
    expect(calls).toBe(2);
  });

  it('gives up after the deadline with the real client against a port nobody listens on', async () => {
    // A port that was free a moment ago: connection refused, a real TransportError from the core.
    const port = await freePort();
    const { NativeConnection } = await import('@temporalio/worker');
    const retries: number[] = [];
    const err = await connectWithRetry(() => NativeConnection.connect({ address: `127.0.0.1:${port}` }), {
      deadlineMs: 1_500,
      initialDelayMs: 100,
      onRetry: (attempt) => retries.push(attempt),
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name).toBe('TransportError');
    expect(retries.length).toBeGreaterThanOrEqual(2);
  });
});
