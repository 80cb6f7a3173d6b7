// `npx tsx bench/callbacks.ts --messages 850000`: how fast the status-callback receiver
// absorbs Twilio's callbacks. The receiver runs as its own process (`npm run callbacks`, as in
// production) against an embedded PostgreSQL; this process plays Twilio: three signed callbacks
// per message (sent, then the final status, then a repeat of it, which must change nothing), with
// a fixed number in flight over keep-alive connections. Prints callbacks/s and latency
// percentiles as seen by the sender, then checks every message has exactly its final receipt.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import twilio from 'twilio';
import pg from 'pg';
import { startStack, PROJECT_ROOT, LOCAL_TWILIO } from '../stack';
import { freePort, waitFor } from '../stack/ports';
import { statusCallbackUrl, requestedUrl } from '../domain/delivery';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
    replicas: { type: 'string', default: '1' },
  },
});
const MESSAGES = Number(values.messages);
const CONCURRENCY = Number(values.concurrency);
const REPLICAS = Number(values.replicas);

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function main(): Promise<void> {
  const dataDir = path.join(PROJECT_ROOT, '.data', 'bench-callbacks');
  const stack = await startStack({ dataDir, parts: { temporal: false, providers: false } });
  const ports = await Promise.all(Array.from({ length: REPLICAS }, () => freePort()));
  const publicUrl = `http://127.0.0.1:${ports[0]}/twilio/status`;
  const children = ports.map((port) =>
    spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'callbacks', 'main.ts')], {
      env: {
        ...process.env,
        DATABASE_URL: stack.env.DATABASE_URL,
        TWILIO_AUTH_TOKEN: LOCAL_TWILIO.authToken,
        PUBLIC_CALLBACK_URL: publicUrl,
        CALLBACKS_PORT: String(port),
        CALLBACKS_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  try {
    await Promise.all(
      ports.map((port) =>
        waitFor('the receiver', async () => {
          const r = await fetch(`http://127.0.0.1:${port}/healthz`);
          if (!r.ok) throw new Error(`healthz ${r.status}`);
        }),
      ),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const total = MESSAGES * 3;
    const latencies = new Float64Array(total);
    let next = 0;
    let failures = 0;
    const runId = 'bench-callbacks';
    const post = (i: number): Promise<void> => {
      const m = Math.floor(i / 3);
      const step = i % 3;
      const sid = `SM${m.toString(16).padStart(32, '0')}`;
      const cb = statusCallbackUrl(publicUrl, runId, `R${m}`);
      const url = requestedUrl(cb);
      const final: Record<string, string> =
        m % 20 === 0 ? { MessageStatus: 'undelivered', ErrorCode: '30005' } : { MessageStatus: 'delivered' };
      const params: Record<string, string> = {
        AccountSid: LOCAL_TWILIO.accountSid,
        ApiVersion: '2010-04-01',
        MessageSid: sid,
        SmsSid: sid,
        From: LOCAL_TWILIO.from,
        To: `+1415555${String(m % 10000).padStart(4, '0')}`,
        ...(step === 0 ? { MessageStatus: 'sent' } : final),
      };
      const body = new URLSearchParams(params).toString();
      const signature = twilio.getExpectedTwilioSignature(LOCAL_TWILIO.authToken, url, params);
      const u = new URL(url);
      u.port = String(ports[m % ports.length]);
      const started = process.hrtime.bigint();
      return new Promise<void>((resolve) => {
        const req = http.request(
          u,
          {
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              'content-length': Buffer.byteLength(body),
              'x-twilio-signature': signature,
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              if ((res.statusCode ?? 0) >= 300) failures++;
              latencies[i] = Number(process.hrtime.bigint() - started) / 1e6;
              resolve();
            });
          },
        );
        req.on('error', () => {
          failures++;
          latencies[i] = Number(process.hrtime.bigint() - started) / 1e6;
          resolve();
        });
        req.end(body);
      });
    };
    const t0 = Date.now();
    let lastReport = t0;
    // Callbacks of one message in order, messages interleaved: `sent` of message m goes out
    // about CONCURRENCY/3 messages before its final status, like a steady stream of receipts.
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (;;) {
          const i = next++;
          if (i >= total) return;
          await post(i);
          if (Date.now() - lastReport > 10_000) {
            lastReport = Date.now();
            console.error(
              `  ${i.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} callbacks, ${Math.round(i / ((lastReport - t0) / 1000))}/s`,
            );
          }
        }
      }),
    );
    const seconds = (Date.now() - t0) / 1000;
    latencies.sort();
    const client = new pg.Client({ connectionString: stack.env.DATABASE_URL });
    await client.connect();
    const check = (
      await client.query(
        `SELECT count(*)::int AS receipts, count(*) FILTER (WHERE rank = 4)::int AS final,
              count(*) FILTER (WHERE status = 'undelivered' AND error_code = '30005')::int AS undelivered
       FROM sms_receipts WHERE run_id = $1`,
        [runId],
      )
    ).rows[0];
    await client.end();
    const result = {
      messages: MESSAGES,
      callbacks: total,
      replicas: REPLICAS,
      concurrency: CONCURRENCY,
      seconds: +seconds.toFixed(1),
      callbacksPerSecond: Math.round(total / seconds),
      failures,
      latencyMs: {
        p50: +percentile(latencies, 0.5).toFixed(2),
        p90: +percentile(latencies, 0.9).toFixed(2),
        p99: +percentile(latencies, 0.99).toFixed(2),
        max: +latencies[total - 1].toFixed(2),
      },
      receipts: check,
      exact: check.receipts === MESSAGES && check.final === MESSAGES && check.undelivered === Math.ceil(MESSAGES / 20),
    };
    console.log(JSON.stringify(result));
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
