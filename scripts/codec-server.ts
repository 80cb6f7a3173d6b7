// Codec server for the Temporal Web UI and CLI (Temporal's remote codec protocol): with payload
// encryption on, the UI shows ciphertext unless it can ask this server to decode.
//
//   POST /decode  {"payloads":[{"metadata":{"encoding":"<base64>",...},"data":"<base64>"}]} -> same shape, decoded
//   POST /encode  the reverse (the UI uses it to send signals and queries with encrypted arguments)
//
// `npm run codec-server` / `npx tsx scripts/codec-server.ts`; environment:
//   PAYLOAD_CODEC_KEY, PAYLOAD_CODEC_KEY_ID, PAYLOAD_CODEC_OLD_KEYS   the worker's keys (required)
//   CODEC_SERVER_PORT     default 8888
//   CODEC_SERVER_HOST     default 127.0.0.1 (never expose it without a token and TLS in front)
//   CODEC_SERVER_ORIGINS  comma-separated origins allowed by CORS; default TEMPORAL_UI_URL's
//                         origin, else http://127.0.0.1:8233 and http://localhost:8233
//   CODEC_SERVER_TOKEN    required: every request needs "Authorization: Bearer <token>" (the UI
//                         sends its access token when "Pass the user access token" is ticked)
//   CODEC_SERVER_ALLOW_NO_TOKEN=true   explicit opt-out, for a laptop-only dev server
// Then in the Web UI: Settings (Data Encoder) -> Remote Codec Endpoint = http://127.0.0.1:8888,
// or start the UI with TEMPORAL_CODEC_ENDPOINT / `temporal server start-dev --ui-codec-endpoint`.
// Every request must carry an allowed Origin, also those that are not from a browser (no
// exemption when the header is absent): the Temporal CLI sends it with
//   --codec-endpoint http://127.0.0.1:8888 --codec-auth "Bearer <token>" --codec-header "Origin=<allowed origin>".
//
// Anyone who can reach it can decrypt payloads: bind it to localhost or put it behind the same
// authentication as the UI. It logs requests by size and outcome only, never payload contents.
import http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { decodeBase64, PayloadCodecError } from '../codec/aes-gcm';
import { payloadCodecFromEnv } from '../workers/data-converter';
import { listen } from '../stack/ports';

export interface CodecServerOptions {
  codec: PayloadCodec;
  port?: number;
  host?: string;
  /** Origins allowed to call from a browser (CORS). */
  origins: string[];
  /** Every encode/decode needs `Authorization: Bearer <token>`; required unless allowNoToken. */
  token?: string;
  /** Run without a token (CODEC_SERVER_ALLOW_NO_TOKEN=true): an explicit choice, never a default. */
  allowNoToken?: boolean;
  /** Largest request body accepted, bytes (default 16 MiB). */
  maxBodyBytes?: number;
  log?: (line: string) => void;
}

export interface CodecServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

function fromBase64(v: unknown, what: string): Uint8Array {
  const bytes = typeof v === 'string' ? decodeBase64(v) : undefined;
  if (!bytes) throw new RequestError(400, `${what} must be base64`);
  return bytes;
}

/** Proto3 JSON of a Payload (bytes as base64) to the SDK's Payload. */
export function payloadFromJson(p: unknown): Payload {
  if (typeof p !== 'object' || p === null || Array.isArray(p))
    throw new RequestError(400, 'each payload must be an object');
  const j = p as JsonPayload;
  const metadata: Record<string, Uint8Array> = {};
  if (j.metadata !== undefined) {
    if (typeof j.metadata !== 'object' || j.metadata === null)
      throw new RequestError(400, 'payload metadata must be an object');
    for (const [k, v] of Object.entries(j.metadata)) metadata[k] = fromBase64(v, `metadata "${k}"`);
  }
  return { metadata, data: j.data === undefined ? new Uint8Array() : fromBase64(j.data, 'data') };
}

export function payloadToJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sameSecret(given: string, expected: string): boolean {
  // Hash first: timingSafeEqual needs equal lengths, and the length must not leak either.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export async function startCodecServer(o: CodecServerOptions): Promise<CodecServer> {
  if (!o.token && !o.allowNoToken) {
    throw new Error(
      'the codec server decrypts for whoever asks: set CODEC_SERVER_TOKEN (or CODEC_SERVER_ALLOW_NO_TOKEN=true on a laptop-only dev server)',
    );
  }
  if (o.origins.length === 0)
    throw new Error('the codec server needs at least one allowed origin (CODEC_SERVER_ORIGINS)');
  const origins = new Set(o.origins.map((x) => x.replace(/\/+$/, '')));
  const maxBody = o.maxBodyBytes ?? 16 * 1024 * 1024;
  const log = o.log ?? (() => undefined);

  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    const cors: Record<string, string> = {};
    if (origin && origins.has(origin)) {
      Object.assign(cors, {
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Credentials': 'true',
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': 'Content-Type, X-Namespace, Authorization',
        'Access-Control-Max-Age': '600',
      });
    }
    const reply = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      const text = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, {
        ...cors,
        Vary: 'Origin',
        'Content-Type': 'application/json',
        'Cache-Control': 'no-store',
        ...extra,
      });
      res.end(text);
    };
    const path = (req.url ?? '/').split('?')[0];
    const op = path.endsWith('/encode') ? 'encode' : path.endsWith('/decode') ? 'decode' : undefined;

    if (req.method === 'OPTIONS') {
      // Preflight: no credentials are sent with it, so it is answered without authentication.
      if (!origin || !origins.has(origin)) return reply(403, { error: 'origin not allowed' });
      return reply(204, undefined);
    }
    if (!op) return reply(404, { error: 'not found: POST /encode or /decode' });
    if (req.method !== 'POST') return reply(405, { error: 'method not allowed' }, { Allow: 'POST, OPTIONS' });
    // Every request, browser or not: a missing Origin is refused like a foreign one.
    if (!origin || !origins.has(origin))
      return reply(403, { error: 'origin not allowed (send an allowed Origin header)' });
    if (o.token) {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      if (!m || !sameSecret(m[1], o.token))
        return reply(401, { error: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer' });
    }

    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody && !aborted) {
        aborted = true;
        reply(413, { error: 'request too large' });
        req.destroy();
        return;
      }
      if (!aborted) chunks.push(c);
    });
    // Every failure is answered inside (catch below): nothing escapes to the event emitter.
    req.on(
      'end',
      () =>
        void (async () => {
          if (aborted) return;
          let count = 0;
          try {
            let body: unknown;
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              throw new RequestError(400, 'body must be JSON: {"payloads":[...]}');
            }
            const list = (body as { payloads?: unknown })?.payloads;
            if (!Array.isArray(list)) throw new RequestError(400, 'body must be {"payloads":[...]}');
            count = list.length;
            const payloads = list.map(payloadFromJson);
            const out = op === 'encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
            log(JSON.stringify({ msg: 'codec request', op, payloads: payloads.length, bytes: size, status: 200 }));
            reply(200, { payloads: out.map(payloadToJson) });
          } catch (err) {
            const status = err instanceof RequestError ? err.status : err instanceof PayloadCodecError ? 400 : 500;
            // Codec errors name key ids at most; anything else is reported without its text.
            const message =
              err instanceof RequestError || err instanceof PayloadCodecError ? err.message : 'internal error';
            log(JSON.stringify({ msg: 'codec request', op, payloads: count, bytes: size, status }));
            reply(status, { error: message });
          }
        })(),
    );
  });

  const { port, host } = await listen(server, o.port ?? 0, o.host ?? '127.0.0.1');
  return {
    url: `http://${host}:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Allowed origins from the environment (see the header). */
function originsFromEnv(env: Record<string, string | undefined>): string[] {
  const explicit = env.CODEC_SERVER_ORIGINS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (explicit?.length) return explicit;
  if (env.TEMPORAL_UI_URL) {
    try {
      return [new URL(env.TEMPORAL_UI_URL).origin];
    } catch {
      // fall through to the local defaults
    }
  }
  return ['http://127.0.0.1:8233', 'http://localhost:8233'];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const codec = payloadCodecFromEnv(process.env);
    if (!codec)
      throw new Error('PAYLOAD_CODEC_KEY and PAYLOAD_CODEC_KEY_ID are required (the same keys as the workers)');
    const port = Number(process.env.CODEC_SERVER_PORT ?? 8888);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('CODEC_SERVER_PORT must be a port number');
    const origins = originsFromEnv(process.env);
    const server = await startCodecServer({
      codec,
      port,
      host: process.env.CODEC_SERVER_HOST ?? '127.0.0.1',
      origins,
      token: process.env.CODEC_SERVER_TOKEN?.trim() || undefined,
      allowNoToken: process.env.CODEC_SERVER_ALLOW_NO_TOKEN === 'true',
      log: (l) => console.log(l),
    });
    console.log(
      JSON.stringify({
        msg: 'codec server listening',
        url: server.url,
        origins,
        auth: process.env.CODEC_SERVER_TOKEN ? 'bearer' : 'none',
        keyIds: codec.knownKeyIds(),
      }),
    );
    const shutdown = () => void server.stop().then(() => process.exit(0));
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  } catch (err) {
    console.error(JSON.stringify({ msg: 'codec server failed', error: (err as Error).message }));
    process.exit(1);
  }
}
