// Prometheus metrics of one worker on METRICS_PORT (`GET /metrics`, text exposition format 0.0.4),
// without a metrics library: a few counters, one histogram and gauges are little code.
//
// One scrape returns, in this order:
//   - pinreset_* : provider calls by channel, outcome and error code (from ActivityDeps.onSend),
//     provider latency, reconciliation look-ups, the configured rate of each active run (read from
//     PostgreSQL at scrape time) and this worker's own settings;
//   - process_* / nodejs_* : memory and uptime of this process;
//   - temporal_* : the Temporal SDK's runtime metrics (task slots, polls, latencies, sticky cache),
//     which the SDK serves on an internal 127.0.0.1 port of its own; they are fetched and appended,
//     so one scrape target has everything. pinreset_sdk_metrics_up says whether that worked.
// Labels hold channels, outcomes, provider error codes and run ids only: never customer data.
import http from 'node:http';
import type { Db } from '../db/pool';
import { listActiveRunRates } from '../db/sql/list-active-run-rates';
import { readLiveProgress } from '../db/sql/read-live-progress';
import { readRun } from '../db/sql/read-run';
import { FRESH_READING_MS } from '../domain/live-progress';
import { achievedRate, etaSeconds, idleSeconds, stallSeconds } from '../domain/live-progress';
import type { SendEvent } from '../activities/deps';
import { listen } from './listen';

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Provider latency buckets, seconds: a local server answers in ms, Twilio in 100s of ms. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Distinct label sets per counter before new error codes are folded into code="other". */
const MAX_SERIES = 500;

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string[] {
  return [`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`];
}

export class Counter {
  private readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels, by = 1): void {
    let key = labelText(labels);
    if (!this.series.has(key) && this.series.size >= MAX_SERIES && 'code' in labels) {
      labels = { ...labels, code: 'other' };
      key = labelText(labels);
    }
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { labels, value: by });
  }

  render(): string[] {
    if (this.series.size === 0) return [];
    const lines = family(this.name, 'counter', this.help);
    for (const { labels, value } of this.series.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines;
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels, buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) s.buckets[i]++;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    if (this.series.size === 0) return [];
    const lines = family(this.name, 'histogram', this.help);
    for (const { labels, buckets, sum, count } of this.series.values()) {
      this.bounds.forEach((le, i) =>
        lines.push(`${this.name}_bucket${labelText({ ...labels, le: String(le) })} ${buckets[i]}`),
      );
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${num(sum)}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines;
  }
}

export interface Gauge {
  name: string;
  help: string;
  values: { labels?: Labels; value: number }[];
}

export function renderGauges(gauges: Gauge[]): string[] {
  const lines: string[] = [];
  for (const g of gauges) {
    lines.push(...family(g.name, 'gauge', g.help));
    for (const v of g.values) lines.push(`${g.name}${labelText(v.labels ?? {})} ${num(v.value)}`);
  }
  return lines;
}

/** The worker's own metrics; `onSend` goes into ActivityDeps. */
export class PinresetMetrics {
  readonly messages = new Counter(
    'pinreset_messages_total',
    'Provider send calls by channel (sms, email), outcome (ok = accepted by the provider; permanent, rate_limited, transient, ambiguous) and provider error code ("" when ok).',
  );
  readonly reconciliations = new Counter(
    'pinreset_reconciliations_total',
    'Look-ups of an earlier ambiguous send at the provider, by channel and result (found = the earlier attempt was delivered, no resend).',
  );
  readonly latency = new Histogram(
    'pinreset_provider_latency_seconds',
    'Provider call latency by channel and call (send, reconcile), seconds.',
    LATENCY_BUCKETS,
  );

  /** For ActivityDeps.onSend: never throws. */
  readonly onSend = (e: SendEvent): void => {
    try {
      const seconds = Math.max(0, e.latencyMs) / 1000;
      if (e.result === 'reconciled') {
        this.reconciliations.inc({ channel: e.channel, result: e.code ?? 'unknown' });
        this.latency.observe({ channel: e.channel, call: 'reconcile' }, seconds);
        return;
      }
      this.messages.inc({
        channel: e.channel,
        outcome: e.result,
        code: e.result === 'ok' ? '' : (e.code ?? 'unknown'),
      });
      this.latency.observe({ channel: e.channel, call: 'send' }, seconds);
    } catch {
      // metrics must never break a send
    }
  };

  render(): string[] {
    return [...this.messages.render(), ...this.reconciliations.render(), ...this.latency.render()];
  }
}

/** Node process metrics (the SDK's own are about Temporal only). */
function processGauges(): Gauge[] {
  const mem = process.memoryUsage();
  return [
    {
      name: 'process_resident_memory_bytes',
      help: 'Resident set size of the worker process, bytes.',
      values: [{ value: mem.rss }],
    },
    { name: 'nodejs_heap_used_bytes', help: 'V8 heap in use, bytes.', values: [{ value: mem.heapUsed }] },
    {
      name: 'process_start_time_seconds',
      help: 'Start time of the process, seconds since the epoch.',
      values: [{ value: Math.round(Date.now() / 1000 - process.uptime()) }],
    },
  ];
}

/** The configured notification ceiling of each running or paused run (+Inf = unlimited). */
export async function runRateGauges(db: Db): Promise<Gauge[]> {
  const runs = await listActiveRunRates(db);
  return [
    {
      name: 'pinreset_run_rate_limit_per_second',
      help: 'Configured notification ceiling of each running or paused run, messages/s for all workers together (+Inf = unlimited).',
      values: runs.map((r) => ({ labels: { run_id: r.id, status: r.status }, value: r.rate })),
    },
  ];
}

/** Active runs whose ledger is read per scrape (each reading scans the run's ledger rows). */
const MAX_PROGRESS_RUNS = 10;

/**
 * Live progress of each running, paused or cancelling run, read from the ledger at scrape time:
 * accounts by outcome, in flight, the send rate achieved over the last minute, the ETA from it,
 * seconds since the last provider call and a stall flag. Same figures as `pinreset status`.
 */
export async function runProgressGauges(db: Db): Promise<Gauge[]> {
  const runs = (await listActiveRunRates(db, MAX_PROGRESS_RUNS)).filter((r) => r.status !== 'created');
  // The workflow's latest reading when fresh (no second scan of a large ledger per scrape).
  const readings = await Promise.all(
    runs.map(async (r) => {
      const saved = (await readRun(db, r.id))?.lastCheckpoint?.live;
      const live = saved && Date.now() - saved.readAtMs < FRESH_READING_MS ? saved : await readLiveProgress(db, r.id);
      return { run: r, live };
    }),
  );
  const per = (f: (x: (typeof readings)[number]) => number | undefined) =>
    readings.flatMap((x) => {
      const v = f(x);
      return v === undefined ? [] : [{ labels: { run_id: x.run.id }, value: v }];
    });
  const OUTCOMES = [
    'reset',
    'skipped',
    'sentSms',
    'sentEmail',
    'fellBack',
    'unreachable',
    'failed',
    'notifySkipped',
    'pending',
  ] as const;
  return [
    {
      name: 'pinreset_run_accounts',
      help: 'Accounts of each active run by outcome, from the ledger at scrape time (outcome: planned, reset, skipped, sentSms, sentEmail, fellBack, unreachable, failed, notifySkipped, pending).',
      values: readings.flatMap(({ run, live }) =>
        (['planned', ...OUTCOMES] as const).map((o) => ({
          labels: { run_id: run.id, outcome: o },
          value: live.counts[o],
        })),
      ),
    },
    {
      name: 'pinreset_run_in_flight',
      help: 'Accounts being sent now (claimed by a send attempt, not settled) per active run.',
      values: per((x) => x.live.inFlight),
    },
    {
      name: 'pinreset_run_sent_per_second',
      help: 'Messages accepted by the providers per second over the last minute, per active run (compare with pinreset_run_rate_limit_per_second).',
      values: per((x) => achievedRate(x.live)),
    },
    {
      name: 'pinreset_run_eta_seconds',
      help: 'Seconds until every pending account is settled at the rate achieved over the last minute; absent while paused or unknown.',
      values: per((x) => etaSeconds(x.live, x.run.status !== 'running')),
    },
    {
      name: 'pinreset_run_seconds_since_provider_call',
      help: 'Seconds since the last provider call seen in the ledger, per active run.',
      values: per((x) => idleSeconds(x.live)),
    },
    {
      name: 'pinreset_run_stalled',
      help: '1 when a running run has accounts pending and made no provider call for 60 s (or 5 messages at its ceiling); alert on it.',
      values: per((x) =>
        stallSeconds(x.live, { sending: x.run.status === 'running', ratePerSecond: x.run.rate }) !== undefined ? 1 : 0,
      ),
    },
  ];
}

export interface MetricsServerOptions {
  port: number;
  /** Default: all interfaces (a container's port must be reachable from the scraper). */
  host?: string;
  metrics: PinresetMetrics;
  /** The SDK's internal exporter, e.g. http://127.0.0.1:9465/metrics. */
  sdkMetricsUrl?: string;
  /** Gauges computed per scrape (configured rates, settings); failures are counted, not fatal. */
  gauges?: () => Promise<Gauge[]> | Gauge[];
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

async function fetchText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

/** Everything one scrape returns (see the header comment). */
export async function scrapeText(
  o: Omit<MetricsServerOptions, 'port' | 'host'>,
  errors: { gauges: number },
): Promise<string> {
  const lines = o.metrics.render();
  if (o.gauges) {
    try {
      lines.push(...renderGauges(await o.gauges()));
    } catch {
      errors.gauges++;
    }
  }
  lines.push(
    ...family(
      'pinreset_metrics_gauge_errors_total',
      'counter',
      'Scrapes whose per-scrape gauges (e.g. the configured rates from PostgreSQL) failed.',
    ),
    `pinreset_metrics_gauge_errors_total ${errors.gauges}`,
  );
  lines.push(...renderGauges(processGauges()));
  let sdk = '';
  if (o.sdkMetricsUrl) {
    try {
      sdk = await fetchText(o.sdkMetricsUrl, 2_000);
    } catch {
      sdk = '';
    }
    lines.push(
      ...renderGauges([
        {
          name: 'pinreset_sdk_metrics_up',
          help: 'Whether the Temporal SDK runtime metrics were included in this scrape.',
          values: [{ value: sdk ? 1 : 0 }],
        },
      ]),
    );
  }
  // OpenMetrics' "# EOF" would end the document early: drop it, the text format needs none.
  const sdkLines = sdk.split('\n').filter((l) => l.trim() !== '' && l.trim() !== '# EOF');
  return `${[...lines, ...sdkLines].join('\n')}\n`;
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const errors = { gauges: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/metrics') {
      scrapeText(o, errors).then(
        (body) => {
          res.writeHead(200, { 'content-type': CONTENT_TYPE, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`);
        },
      );
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('pinreset worker: metrics at /metrics\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 65_000; // longer than common scraper keep-alives
  const { port } = await listen(server, o.port, o.host);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
