// Payload encryption: the AES-256-GCM codec on its own (round trip, tampering, keys, rotation),
// the codec server the Web UI calls, and a real run with the codec on, whose stored history
// holds only ciphertext that the codec server turns back into the original JSON (both ways).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, type Worker } from '@temporalio/worker';
import {
  AesGcmCodec,
  codecOptionsFromEnv,
  ENCRYPTED_ENCODING,
  isEncrypted,
  KEY_ID_METADATA,
  PayloadCodecError,
} from '../codec/aes-gcm';
import { dataConverterFromEnv, FAILURE_CONVERTER_PATH, payloadCodecFromEnv } from '../workers/data-converter';
import { createPinresetWorker, WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from '../workers/create-worker';
import { payloadFromJson, payloadToJson, startCodecServer, type CodecServer } from '../scripts/codec-server';
import { startRun } from '../run-api/start-run';
import { cancelSignal, pauseSignal, progressQuery, resumeSignal, setRateUpdate } from '../workflows/api';
import type { Db } from '../db/pool';
import { account, insertAccounts } from './support/accounts';
import { freshDatabase, startProviders, type Providers } from './support/harness';
import { until } from './support/until';

const enc = new TextEncoder();
const dec = new TextDecoder();
const jsonPayload = (value: unknown): Payload => ({
  metadata: { encoding: enc.encode('json/plain') },
  data: enc.encode(JSON.stringify(value)),
});
const key = () => ({ id: `k-${randomBytes(3).toString('hex')}`, key: randomBytes(32) });

describe('AES-256-GCM payload codec', () => {
  it('round-trips payloads, metadata included, with a fresh IV every time', async () => {
    const codec = new AesGcmCodec({ current: key() });
    const originals = [
      jsonPayload({ runId: 'r-1', first: 1, last: 1000 }),
      { metadata: { encoding: enc.encode('binary/null') }, data: new Uint8Array() },
      jsonPayload('ünïcödé ✓'),
    ];
    const encoded = await codec.encode(originals);
    for (const p of encoded) {
      expect(dec.decode(p.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(dec.decode(p.metadata![KEY_ID_METADATA])).toBe(codec.keyId);
      expect(Buffer.from(p.data!).includes(Buffer.from('r-1'))).toBe(false);
    }
    const decoded = await codec.decode(encoded);
    expect(decoded.map((p) => [dec.decode(p.metadata!.encoding), Buffer.from(p.data!).toString()])).toEqual(
      originals.map((p) => [dec.decode(p.metadata!.encoding), Buffer.from(p.data!).toString()]),
    );
    const [a, b] = await codec.encode([originals[0], originals[0]]);
    expect(Buffer.from(a.data!).equals(Buffer.from(b.data!))).toBe(false);
  });

  it('passes payloads that are not encrypted through decode untouched', async () => {
    const codec = new AesGcmCodec({ current: key() });
    const plain = jsonPayload({ x: 1 });
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  it('detects tampering: a flipped bit, a truncated payload, a relabelled key id', async () => {
    const k1 = key();
    const k2 = key();
    const codec = new AesGcmCodec({ current: k1, previous: [k2] });
    const [p] = await codec.encode([jsonPayload({ secret: 'no' })]);
    for (const i of [0, 20, p.data!.length - 1]) {
      const data = Buffer.from(p.data!);
      data[i] ^= 0x01;
      await expect(codec.decode([{ ...p, data }])).rejects.toThrow(/failed authentication/);
    }
    await expect(codec.decode([{ ...p, data: p.data!.subarray(0, 20) }])).rejects.toThrow(/truncated/);
    // Same bytes presented as written under the other known key: the key id is authenticated.
    await expect(
      codec.decode([{ ...p, metadata: { ...p.metadata, [KEY_ID_METADATA]: enc.encode(k2.id) } }]),
    ).rejects.toThrow(PayloadCodecError);
  });

  it('names an unknown key id, and never key material', async () => {
    const writer = new AesGcmCodec({ current: { id: 'old-2024', key: randomBytes(32) } });
    const reader = new AesGcmCodec({ current: key() });
    const [p] = await writer.encode([jsonPayload(1)]);
    const err = await reader.decode([p]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(PayloadCodecError);
    expect((err as Error).message).toMatch(/unknown encryption key id "old-2024"/);
    const { [KEY_ID_METADATA]: _drop, ...noId } = p.metadata!;
    await expect(reader.decode([{ ...p, metadata: noId }])).rejects.toThrow(/no encryption-key-id/);
  });

  it('rotates: payloads of the old key still decode once the new key encrypts', async () => {
    const old = key();
    const fresh = key();
    const [written] = await new AesGcmCodec({ current: old }).encode([jsonPayload({ v: 'before rotation' })]);
    const rotated = new AesGcmCodec({ current: fresh, previous: [old] });
    expect(JSON.parse(Buffer.from((await rotated.decode([written]))[0].data!).toString())).toEqual({
      v: 'before rotation',
    });
    const [now] = await rotated.encode([jsonPayload(2)]);
    expect(dec.decode(now.metadata![KEY_ID_METADATA])).toBe(fresh.id);
    expect(rotated.knownKeyIds()).toEqual([fresh.id, old.id]);
    expect(() => new AesGcmCodec({ current: fresh, previous: [{ id: fresh.id, key: randomBytes(32) }] })).toThrow(
      /given twice/,
    );
  });

  it('reads its keys from the environment, refusing partial or malformed settings without echoing them', () => {
    const k = randomBytes(32).toString('base64');
    const o = randomBytes(32).toString('base64');
    expect(codecOptionsFromEnv({})).toBeUndefined();
    expect(dataConverterFromEnv({})).toBeUndefined();
    const opts = codecOptionsFromEnv({
      PAYLOAD_CODEC_KEY: k,
      PAYLOAD_CODEC_KEY_ID: '2025-11',
      PAYLOAD_CODEC_OLD_KEYS: `2025-05:${o}`,
    })!;
    expect(opts.current.id).toBe('2025-11');
    expect(opts.previous!.map((p) => p.id)).toEqual(['2025-05']);
    const dc = dataConverterFromEnv({ PAYLOAD_CODEC_KEY: k, PAYLOAD_CODEC_KEY_ID: '2025-11' })!;
    expect(dc.payloadCodecs).toHaveLength(1);
    expect(dc.failureConverterPath).toBe(FAILURE_CONVERTER_PATH);

    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ PAYLOAD_CODEC_KEY: k }, /PAYLOAD_CODEC_KEY_ID is missing/],
      [{ PAYLOAD_CODEC_KEY_ID: 'x' }, /PAYLOAD_CODEC_KEY is missing/],
      [{ PAYLOAD_CODEC_KEY: randomBytes(16).toString('base64'), PAYLOAD_CODEC_KEY_ID: 'x' }, /exactly 32 bytes/],
      [{ PAYLOAD_CODEC_KEY: `${k.slice(0, 10)}!!${k.slice(12)}`, PAYLOAD_CODEC_KEY_ID: 'x' }, /base64/],
      [{ PAYLOAD_CODEC_KEY: k, PAYLOAD_CODEC_KEY_ID: 'has space' }, /KEY_ID must be/],
      [{ PAYLOAD_CODEC_KEY: k, PAYLOAD_CODEC_KEY_ID: 'x', PAYLOAD_CODEC_OLD_KEYS: `a:${o},${o}` }, /OLD_KEYS entry 2/],
      [{ PAYLOAD_CODEC_OLD_KEYS: `a:${o}` }, /PAYLOAD_CODEC_KEY is missing/],
    ];
    for (const [env, problem] of bad) {
      const err = (() => {
        try {
          codecOptionsFromEnv(env);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(err?.message, JSON.stringify(Object.keys(env))).toMatch(problem);
      expect(err!.message).not.toContain(k.slice(0, 12));
      expect(err!.message).not.toContain(o.slice(0, 12));
    }
  });
});

describe('codec server', () => {
  const origin = 'http://127.0.0.1:8233';
  let codec: AesGcmCodec;
  let open: CodecServer;
  let locked: CodecServer;

  beforeAll(async () => {
    codec = new AesGcmCodec({ current: key() });
    open = await startCodecServer({ codec, origins: [origin], allowNoToken: true });
    locked = await startCodecServer({ codec, origins: [origin], token: 's3cret-token' });
  });
  afterAll(async () => {
    await open?.stop();
    await locked?.stop();
  });

  const post = (server: CodecServer, op: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/${op}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: origin, ...headers },
      body: JSON.stringify(body),
    });

  it('will not start without a token unless told so explicitly, nor without an allowed origin', async () => {
    await expect(startCodecServer({ codec, origins: [origin] })).rejects.toThrow(/set CODEC_SERVER_TOKEN/);
    await expect(startCodecServer({ codec, origins: [], token: 't' })).rejects.toThrow(/allowed origin/);
  });

  it('checks the origin on every request: absent is refused like foreign', async () => {
    const noOrigin = await fetch(`${locked.url}/decode`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer s3cret-token' },
      body: '{"payloads":[]}',
    });
    expect(noOrigin.status).toBe(403);
    expect(noOrigin.headers.get('access-control-allow-origin')).toBeNull();
    expect(
      (
        await post(
          locked,
          'decode',
          { payloads: [] },
          { Authorization: 'Bearer s3cret-token', Origin: 'https://evil.example' },
        )
      ).status,
    ).toBe(403);
    expect((await post(locked, 'encode', { payloads: [] }, { Authorization: 'Bearer s3cret-token' })).status).toBe(200);
  });

  it('encodes and decodes Temporal JSON payloads, both ways with the worker codec', async () => {
    const plain = jsonPayload({ runId: 'codec-srv-1' });
    const encodedRes = await post(open, 'encode', { payloads: [payloadToJson(plain)] });
    expect(encodedRes.status).toBe(200);
    const encoded = ((await encodedRes.json()) as { payloads: unknown[] }).payloads.map(payloadFromJson);
    expect(isEncrypted(encoded[0])).toBe(true);
    // What the server encoded, the worker's codec reads; what the worker's codec wrote, the server reads.
    expect(Buffer.from((await codec.decode(encoded))[0].data!).toString()).toBe('{"runId":"codec-srv-1"}');
    const [byWorker] = await codec.encode([jsonPayload({ runId: 'codec-srv-2' })]);
    const decodedRes = await post(open, 'decode', { payloads: [payloadToJson(byWorker)] });
    const [back] = (
      (await decodedRes.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }
    ).payloads;
    expect(Buffer.from(back.metadata.encoding, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(back.data, 'base64').toString())).toEqual({ runId: 'codec-srv-2' });
    expect(await (await post(open, 'decode', { payloads: [] })).json()).toEqual({ payloads: [] });
  });

  it('answers CORS preflights for the Web UI origin only', async () => {
    const pre = await fetch(`${open.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-namespace',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(origin);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/i);
    const evil = await fetch(`${open.url}/decode`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const fromUi = await post(open, 'decode', { payloads: [] }, { Origin: origin, 'X-Namespace': 'default' });
    expect(fromUi.headers.get('access-control-allow-origin')).toBe(origin);
    expect((await post(open, 'decode', { payloads: [] }, { Origin: 'https://evil.example' })).status).toBe(403);
  });

  it('requires the bearer token when one is set (preflight excepted)', async () => {
    expect((await post(locked, 'decode', { payloads: [] })).status).toBe(401);
    expect((await post(locked, 'decode', { payloads: [] }, { Authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post(locked, 'decode', { payloads: [] }, { Authorization: 'Bearer s3cret-token' })).status).toBe(200);
    expect((await fetch(`${locked.url}/decode`, { method: 'OPTIONS', headers: { Origin: origin } })).status).toBe(204);
  });

  it('rejects bad requests without echoing them', async () => {
    const notJson = await fetch(`${open.url}/decode`, {
      method: 'POST',
      headers: { Origin: origin },
      body: 'payloads=+15551234567',
    });
    expect(notJson.status).toBe(400);
    expect(await notJson.text()).not.toContain('5551234567');
    expect((await post(open, 'decode', { nope: 1 })).status).toBe(400);
    expect((await post(open, 'decode', { payloads: [{ data: '***' }] })).status).toBe(400);
    const [foreign] = await new AesGcmCodec({ current: { id: 'other', key: randomBytes(32) } }).encode([
      jsonPayload('x'),
    ]);
    const unknownKey = await post(open, 'decode', { payloads: [payloadToJson(foreign)] });
    expect(unknownKey.status).toBe(400);
    expect(((await unknownKey.json()) as { error: string }).error).toMatch(/unknown encryption key id "other"/);
    expect((await fetch(`${open.url}/decode`, { headers: { Origin: origin } })).status).toBe(405);
    expect((await fetch(`${open.url}/nothing`, { method: 'POST', headers: { Origin: origin } })).status).toBe(404);
  });
});

/**
 * Every Payload-shaped object in a history, with its path. Search attributes are stored unencoded
 * by design, and so is a `patched()` marker's data: the SDK writes the patch's name (a constant of
 * the workflow code, docs/changing-the-workflow.md) outside the data converter.
 */
function payloadsIn(
  value: unknown,
  at = '$',
  out: Array<{ path: string; payload: Payload }> = [],
): Array<{ path: string; payload: Payload }> {
  if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) return out;
  const o = value as Record<string, unknown>;
  if (o.metadata && typeof o.metadata === 'object' && 'data' in o && !Array.isArray(o.metadata)) {
    out.push({ path: at, payload: o as Payload });
    return out;
  }
  for (const [k, v] of Object.entries(o)) {
    if (k === 'searchAttributes' || k === 'upsertWorkflowSearchAttributesEventAttributes' || k === 'patch-data')
      continue;
    payloadsIn(v, `${at}.${k}`, out);
  }
  return out;
}

describe('a run with payload encryption on', () => {
  const CONFIG_ERROR_PREFIX = '+1666555'; // the local Twilio answers 20003 (our credentials): the batch pauses the run
  let db: Db;
  let providers: Providers;
  let worker: Worker;
  let running: Promise<void>;
  let workerConnection: NativeConnection;
  let connection: Connection;
  let client: Client; // with the codec, like the CLI when PAYLOAD_CODEC_KEY is set
  let rawClient: Client; // without: what the server stores and anyone with history access sees
  let server: CodecServer;
  let dir: string;
  const env = { PAYLOAD_CODEC_KEY: randomBytes(32).toString('base64'), PAYLOAD_CODEC_KEY_ID: 'test-key-1' };
  const taskQueue = `codec-${randomBytes(4).toString('hex')}`;
  let runId: string;
  let workflowId: string;

  beforeAll(async () => {
    ({ db } = await freshDatabase('codec'));
    providers = await startProviders({ twilio: { permanent: [{ prefix: CONFIG_ERROR_PREFIX, code: 20003 }] } });
    dir = await mkdtemp(path.join(tmpdir(), 'pinreset-codec-'));
    // The workflow side needs the encoding failure converter inside its bundle.
    const { code } = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
      failureConverterPath: FAILURE_CONVERTER_PATH,
      logger: new DefaultLogger('WARN'),
    });
    const bundlePath = path.join(dir, 'workflow-bundle.js');
    await writeFile(bundlePath, code);
    const dataConverter = dataConverterFromEnv(env)!;
    workerConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await createPinresetWorker({
      connection: workerConnection,
      namespace: 'default',
      taskQueue,
      deps: providers.deps(db),
      workflowBundlePath: bundlePath,
      // As workers/main.ts: signals and updates in plain text are refused.
      shutdownGraceTime: '5s',
      dataConverter: dataConverterFromEnv(env, { refusePlaintext: true })!,
    });
    running = worker.run();
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection, namespace: 'default', dataConverter });
    rawClient = new Client({ connection, namespace: 'default' });
    server = await startCodecServer({
      codec: payloadCodecFromEnv(env)!,
      origins: [inject('temporalUiUrl')],
      token: 'run-codec-token',
    });
    await insertAccounts(db, [
      ...Array.from({ length: 30 }, (_, i) => account(i + 1)),
      account(31, { phone: `${CONFIG_ERROR_PREFIX}0031` }),
    ]);
  }, 180_000);

  afterAll(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    await workerConnection?.close();
    await connection?.close();
    await server?.stop();
    await providers?.stop();
    await db?.end();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs end to end (through an auto-pause on a provider configuration error)', async () => {
    const started = await startRun(db, client, {
      reason: 'INC-codec',
      operator: 't',
      taskQueue,
      accountIds: Array.from({ length: 31 }, (_, i) => i + 1),
      params: { batchSize: 40, batchConcurrency: 1, ratePerSecond: 'unlimited' },
    });
    runId = started.runId;
    workflowId = started.handle.workflowId;
    const paused = await until('the auto-pause', async () => {
      const p = await started.handle.query(progressQuery);
      return p.autoPaused && p.batches.inFlight === 0 ? p : undefined;
    });
    expect(paused.pauseReason).toMatch(/sms provider rejected the configuration \(20003\)/);
    providers.twilio.setFaults({ permanent: [] });
    await started.handle.signal(resumeSignal);
    const result = await started.handle.result();
    expect(result.counts).toMatchObject({ planned: 31, sentSms: 31, pending: 0 });
  });

  it('stores only ciphertext: inputs, results, heartbeats and failure messages', async () => {
    const history = await rawClient.workflow.getHandle(workflowId).fetchHistory();
    const found = payloadsIn(history.events);
    expect(found.length).toBeGreaterThan(10);
    // Every payload, the static summary and details (user metadata) included; only search
    // attributes (skipped above: ids and states, by design) are stored as they are.
    const clear = found.filter(({ payload }) => !isEncrypted(payload));
    expect(clear.map((c) => c.path)).toEqual([]);
    expect(found.some((f) => /userMetadata/.test(f.path))).toBe(true);
    for (const { payload } of found) {
      if (isEncrypted(payload)) expect(dec.decode(payload.metadata![KEY_ID_METADATA])).toBe('test-key-1');
    }
    const scheduled = history.events!.filter((e) => e.activityTaskScheduledEventAttributes);
    expect(scheduled.length).toBeGreaterThan(3);
    for (const e of scheduled) {
      for (const p of e.activityTaskScheduledEventAttributes!.input!.payloads!) {
        expect(isEncrypted(p as Payload)).toBe(true);
        expect(Buffer.from(p.data!).includes(Buffer.from(runId))).toBe(false);
        expect(Buffer.from(p.data!).includes(Buffer.from('"runId"'))).toBe(false);
      }
    }
    const failedEvents = history.events!.filter((e) => e.activityTaskFailedEventAttributes);
    expect(failedEvents.length).toBeGreaterThan(0);
    for (const e of failedEvents) {
      const failure = e.activityTaskFailedEventAttributes!.failure!;
      expect(failure.message).toBe('Encoded failure');
      expect(failure.stackTrace ?? '').toBe('');
      expect(isEncrypted(failure.encodedAttributes as Payload)).toBe(true);
      expect(JSON.stringify(failure)).not.toMatch(/provider rejected|20003/);
    }
  });

  it('the codec server turns the stored payloads back into JSON, and the codec client reads what it wrote', async () => {
    const history = await rawClient.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'notifyBatch',
    )!;
    const input = scheduled.activityTaskScheduledEventAttributes!.input!.payloads! as Payload[];
    const res = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'X-Namespace': 'default',
        Origin: inject('temporalUiUrl'),
        Authorization: 'Bearer run-codec-token',
      },
      body: JSON.stringify({ payloads: input.map(payloadToJson) }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(inject('temporalUiUrl'));
    const [decoded] = ((await res.json()) as { payloads: unknown[] }).payloads.map(payloadFromJson);
    expect(dec.decode(decoded.metadata!.encoding)).toBe('json/plain');
    expect(JSON.parse(Buffer.from(decoded.data!).toString())).toMatchObject({ runId, policy: 'sms_then_email' });

    const failedEvent = history.events!.find((e) => e.activityTaskFailedEventAttributes)!;
    const attrs = failedEvent.activityTaskFailedEventAttributes!.failure!.encodedAttributes as Payload;
    const res2 = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: { Origin: inject('temporalUiUrl'), Authorization: 'Bearer run-codec-token' },
      body: JSON.stringify({ payloads: [payloadToJson(attrs)] }),
    });
    const [message] = ((await res2.json()) as { payloads: unknown[] }).payloads.map(payloadFromJson);
    expect(JSON.parse(Buffer.from(message.data!).toString()).message).toMatch(
      /sms provider rejected the configuration \(20003\)/,
    );

    // The client with the codec decodes results transparently; without it, the result is ciphertext.
    expect((await client.workflow.getHandle(workflowId).result()).runId).toBe(runId);
    await expect(rawClient.workflow.getHandle(workflowId).result()).rejects.toThrow();
  });

  it('refuses signals and updates sent in plain text; the same sent through the codec are obeyed', async () => {
    await insertAccounts(
      db,
      Array.from({ length: 20 }, (_, i) => account(201 + i)),
    );
    const started = await startRun(db, client, {
      reason: 'INC-plain',
      operator: 't',
      taskQueue,
      accountIds: Array.from({ length: 20 }, (_, i) => 201 + i),
      params: { batchSize: 5, batchConcurrency: 1, ratePerSecond: 1 },
    });
    // A client that sends in plain text but reads the encrypted answers (a Web UI or CLI whose
    // encoding is not set up): the refusal's message reaches it.
    const codec = payloadCodecFromEnv(env)!;
    const plainSender = new Client({
      connection,
      namespace: 'default',
      dataConverter: {
        ...dataConverterFromEnv(env)!,
        payloadCodecs: [{ encode: async (p: Payload[]) => p, decode: (p: Payload[]) => codec.decode(p) }],
      },
    });
    const plain = plainSender.workflow.getHandle(started.handle.workflowId);
    await until('sending', async () => (await started.handle.query(progressQuery)).phase === 'notifying');
    // Plain text: the pause is dropped, the rate change rejected, saying why.
    await plain.signal(pauseSignal, { reason: 'plain-text pause' });
    const refused = await plain.executeUpdate(setRateUpdate, { args: [50] }).then(
      () => undefined,
      (e: Error & { cause?: Error }) => e,
    );
    expect(refused?.cause?.message).toMatch(
      /^update setRate refused: its input is not encrypted while payload encryption is on/,
    );
    // Signals and updates are handled in order: once this encrypted update is answered, the
    // plain-text pause before it has been handled too.
    expect(await started.handle.executeUpdate(setRateUpdate, { args: [2] })).toEqual({ previous: 1, current: 2 });
    const p = await started.handle.query(progressQuery);
    expect(p.paused).toBe(false);
    expect(p.ratePerSecond).toBe(2);
    // Through the codec, the same pause is obeyed.
    await started.handle.signal(pauseSignal, { reason: 'encrypted pause' });
    await until('paused', async () => (await started.handle.query(progressQuery)).paused);
    expect((await started.handle.query(progressQuery)).pauseReason).toBe('encrypted pause');
    await started.handle.signal(cancelSignal, { reason: 'test over' });
    expect((await started.handle.result()).status).toBe('cancelled');
  });
});
