// The worker process (`workers/main.ts`, as `npm run worker` starts it) with METRICS_PORT: a small
// run on the real stack, then one scrape of /metrics must agree with the run's ledger counts,
// carry the configured rate while the run is active, include the Temporal SDK's runtime metrics,
// and hold no customer data. Its stdout is JSON lines with no customer data either.
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { readCounts } from '../db/sql/read-counts';
import { startRun } from '../run-api/start-run';
import { PROJECT_ROOT } from '../stack';
import { freePort } from '../stack/ports';
import { account, insertAccounts, type AccountSpec } from './support/accounts';
import { freshDatabase, startProviders, temporalClient, type Providers } from './support/harness';
import { spawnWorker, type WorkerProcess } from '../stack/worker-process';
import { PinresetMetrics, scrapeText } from '../workers/metrics';

const ARTIFACTS = path.join(PROJECT_ROOT, 'tests', 'artifacts');
const INVALID_PREFIX = '+1212555'; // the local Twilio answers 21211: falls back to email

function cohort(): AccountSpec[] {
  const specs: AccountSpec[] = [];
  for (let id = 1; id <= 60; id++) specs.push(account(id)); // SMS
  for (let id = 61; id <= 70; id++) specs.push(account(id, { phone: null, phoneType: null })); // email
  for (let id = 71; id <= 75; id++) specs.push(account(id, { phone: `${INVALID_PREFIX}${1000 + id}` })); // 21211 -> email
  for (let id = 76; id <= 78; id++) specs.push(account(id, { smsOptOut: true, email: null })); // unreachable: no call
  return specs;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;

/** Parses the Prometheus text format strictly enough to catch a malformed line. */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const t = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (t) {
        expect(types.has(t[1]), `metric family ${t[1]} declared twice`).toBe(false);
        types.set(t[1], t[2]);
      }
      continue;
    }
    const m = SAMPLE_LINE.exec(line);
    expect(m, `malformed sample line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m![2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m![1], labels, value: Number(m![3]) });
  }
  return { samples, types };
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

describe('worker metrics endpoint', () => {
  let db: Db;
  let dbUrl: string;
  let providers: Providers;
  let client: Client;
  let closeClient: () => Promise<void>;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    ({ db, url: dbUrl } = await freshDatabase('metrics'));
    providers = await startProviders({ twilio: { permanent: [{ prefix: INVALID_PREFIX, code: 21211 }] } });
    ({ client, close: closeClient } = await temporalClient());
    await insertAccounts(db, cohort());
  });

  afterAll(async () => {
    await worker?.kill();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('counts every provider call of a run, with its outcome, and serves the SDK metrics', async () => {
    const metricsPort = await freePort();
    const taskQueue = `metrics-${Date.now()}`;
    worker = spawnWorker({
      ...providers.env,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'info',
    });
    await worker.ready;
    const url = `http://127.0.0.1:${metricsPort}/metrics`;
    const scrape = async () => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      return res.text();
    };

    const { runId, handle } = await startRun(db, client, {
      // 5 msg/s (~16 s): the workflow's live readings (every 5 s) catch the run while it sends.
      reason: 'INC-metrics',
      operator: 't',
      taskQueue,
      params: { batchSize: 20, batchConcurrency: 2, ratePerSecond: 5 },
    });
    // While the run is active, its configured rate is a gauge.
    const rate = { name: 'pinreset_run_rate_limit_per_second', labels: { run_id: runId, status: 'running' } };
    let rateSeen = 0;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !rateSeen;) {
      rateSeen = sum(parseMetrics(await scrape()).samples, rate.name, rate.labels);
      if (!rateSeen) await new Promise((r) => setTimeout(r, 100));
    }
    expect(rateSeen).toBe(5);
    // Live progress from the ledger while it runs: counts by outcome that move before any batch ends.
    const run = { run_id: runId };
    let live = parseMetrics(await scrape());
    for (
      const deadline = Date.now() + 30_000;
      Date.now() < deadline && !sum(live.samples, 'pinreset_run_accounts', { ...run, outcome: 'sentSms' });
    ) {
      await new Promise((r) => setTimeout(r, 200));
      live = parseMetrics(await scrape());
    }
    expect(live.types.get('pinreset_run_accounts')).toBe('gauge');
    expect(sum(live.samples, 'pinreset_run_accounts', { ...run, outcome: 'planned' })).toBe(78);
    const sentNow = sum(live.samples, 'pinreset_run_accounts', { ...run, outcome: 'sentSms' });
    expect(sentNow).toBeGreaterThan(0);
    expect(sentNow).toBeLessThanOrEqual((await readCounts(db, runId)).sentSms);
    for (const g of ['pinreset_run_in_flight', 'pinreset_run_seconds_since_provider_call', 'pinreset_run_stalled']) {
      expect(
        live.samples.some((x) => x.name === g && x.labels.run_id === runId),
        g,
      ).toBe(true);
    }
    expect(sum(live.samples, 'pinreset_run_stalled', run)).toBe(0);

    const result = await handle.result();
    expect(result.status).toBe('completed');
    const counts = await readCounts(db, runId);
    expect(counts).toMatchObject({
      planned: 78,
      sentSms: 60,
      sentEmail: 15,
      fellBack: 5,
      unreachable: 3,
      failed: 0,
      pending: 0,
    });

    const text = await scrape();
    // For debugging: what the scraper and the log collector got.
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(path.join(ARTIFACTS, 'worker-metrics.txt'), text);
    const { samples, types } = parseMetrics(text);
    const messages = 'pinreset_messages_total';
    expect(types.get(messages)).toBe('counter');
    expect(sum(samples, messages, { channel: 'sms', outcome: 'ok' })).toBe(counts.sentSms);
    expect(sum(samples, messages, { channel: 'email', outcome: 'ok' })).toBe(counts.sentEmail);
    expect(sum(samples, messages, { channel: 'sms', outcome: 'permanent', code: '21211' })).toBe(counts.fellBack);
    // Every call the providers saw, and nothing else (no retries happened here).
    expect(sum(samples, messages, { channel: 'sms' })).toBe(providers.twilio.messages().length + counts.fellBack);
    expect(sum(samples, messages, { channel: 'email' })).toBe(providers.smtp.messages().length);

    const latency = 'pinreset_provider_latency_seconds';
    expect(types.get(latency)).toBe('histogram');
    expect(sum(samples, `${latency}_count`, { channel: 'sms', call: 'send' })).toBe(counts.sentSms + counts.fellBack);
    expect(sum(samples, `${latency}_bucket`, { channel: 'sms', call: 'send', le: '+Inf' })).toBe(
      counts.sentSms + counts.fellBack,
    );
    expect(sum(samples, `${latency}_count`, { channel: 'email', call: 'send' })).toBe(counts.sentEmail);
    expect(sum(samples, `${latency}_sum`, { channel: 'sms', call: 'send' })).toBeGreaterThan(0);

    // The run is over: no rate gauge for it any more; the worker's settings are there.
    expect(samples.filter((s) => s.name === rate.name && s.labels.run_id === runId)).toEqual([]);
    expect(sum(samples, 'pinreset_worker_send_concurrency')).toBeGreaterThan(0);
    expect(sum(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    // The SDK's runtime metrics, merged into the same response.
    expect(sum(samples, 'pinreset_sdk_metrics_up')).toBe(1);
    const sdk = samples.filter((s) => s.name.startsWith('temporal_'));
    expect(sdk.length).toBeGreaterThan(10);
    expect(sdk.some((s) => s.labels.task_queue === taskQueue)).toBe(true);

    // No customer data in metrics or logs.
    for (const out of [text, worker.output()]) {
      expect(out).not.toMatch(/\+1415555\d{4}|\+1212555\d{4}|customer\d+@mail\.example/);
    }
    const lines = worker.output().split('\n').filter(Boolean);
    for (const line of lines) expect(() => JSON.parse(line), `not a JSON log line: ${line}`).not.toThrow();
    expect(lines.map((l) => JSON.parse(l)).find((e) => e.msg === 'worker started')).toMatchObject({
      level: 'info',
      taskQueue,
      metricsPort,
    });

    // Graceful stop: the endpoint closes with the worker.
    await worker.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
    expect(worker.output()).toContain('"worker stopped"');
    await expect(fetch(url)).rejects.toThrow();
    await writeFile(path.join(ARTIFACTS, 'worker-log.jsonl'), worker.output());
  });
});

describe('metrics text', () => {
  it('renders counters and the latency histogram from send events, in valid exposition format', async () => {
    const m = new PinresetMetrics();
    m.onSend({ channel: 'sms', result: 'ok', latencyMs: 3 });
    m.onSend({ channel: 'sms', result: 'ok', latencyMs: 700 });
    m.onSend({ channel: 'sms', result: 'permanent', code: '21610', latencyMs: 40 });
    m.onSend({ channel: 'sms', result: 'reconciled', code: 'found', latencyMs: 20 });
    m.onSend({ channel: 'email', result: 'transient', code: 'smtp "4"\\50\nx', latencyMs: 1 });
    const text = await scrapeText(
      {
        metrics: m,
        gauges: () => {
          throw new Error('db down');
        },
      },
      { gauges: 0 },
    );
    const { samples, types } = parseMetrics(text);
    expect(types.get('pinreset_reconciliations_total')).toBe('counter');
    expect(sum(samples, 'pinreset_messages_total', { channel: 'sms', outcome: 'ok', code: '' })).toBe(2);
    expect(sum(samples, 'pinreset_messages_total', { channel: 'sms', outcome: 'permanent', code: '21610' })).toBe(1);
    expect(sum(samples, 'pinreset_reconciliations_total', { channel: 'sms', result: 'found' })).toBe(1);
    // Label values are escaped: quote, backslash, newline.
    expect(text).toContain('code="smtp \\"4\\"\\\\50\\nx"');
    const bucket = (le: string) =>
      sum(samples, 'pinreset_provider_latency_seconds_bucket', { channel: 'sms', call: 'send', le });
    expect([bucket('0.005'), bucket('0.05'), bucket('0.5'), bucket('1'), bucket('+Inf')]).toEqual([1, 2, 2, 3, 3]);
    expect(sum(samples, 'pinreset_provider_latency_seconds_sum', { channel: 'sms', call: 'send' })).toBeCloseTo(0.743);
    expect(sum(samples, 'pinreset_metrics_gauge_errors_total')).toBe(1);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('folds unbounded error codes into code="other" and never throws from onSend', () => {
    const m = new PinresetMetrics();
    for (let i = 0; i < 700; i++) m.onSend({ channel: 'sms', result: 'transient', code: `E${i}`, latencyMs: 1 });
    const { samples } = parseMetrics(m.render().join('\n'));
    const series = samples.filter((s) => s.name === 'pinreset_messages_total');
    expect(series.length).toBeLessThanOrEqual(501);
    expect(series.reduce((n, s) => n + s.value, 0)).toBe(700);
    expect(series.find((s) => s.labels.code === 'other')?.value).toBe(200);
    expect(() => m.onSend(null as never)).not.toThrow();
  });

  it('appends the SDK text without its "# EOF", and says when it is missing', async () => {
    // A stand-in for the SDK's exporter, answering in OpenMetrics style.
    const sdk = http.createServer((_req, res) => {
      res.end(
        '# HELP temporal_request Client requests\n# TYPE temporal_request counter\ntemporal_request{operation="PollActivityTaskQueue"} 3\n# EOF\n',
      );
    });
    await new Promise<void>((resolve) => sdk.listen(0, '127.0.0.1', resolve));
    try {
      const sdkUrl = `http://127.0.0.1:${(sdk.address() as AddressInfo).port}/metrics`;
      const text = await scrapeText({ metrics: new PinresetMetrics(), sdkMetricsUrl: sdkUrl }, { gauges: 0 });
      const { samples } = parseMetrics(text);
      expect(sum(samples, 'pinreset_sdk_metrics_up')).toBe(1);
      expect(sum(samples, 'temporal_request', { operation: 'PollActivityTaskQueue' })).toBe(3);
      expect(text).not.toContain('# EOF');
    } finally {
      await new Promise((resolve) => sdk.close(resolve));
    }
    const down = await scrapeText(
      { metrics: new PinresetMetrics(), sdkMetricsUrl: 'http://127.0.0.1:1/metrics' },
      { gauges: 0 },
    );
    expect(sum(parseMetrics(down).samples, 'pinreset_sdk_metrics_up')).toBe(0);
  });
});
