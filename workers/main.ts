// `npm run worker`: one worker process. Several may run against one server; SIGTERM or SIGINT
// drains it gracefully (activities in flight get the grace time, then resume elsewhere from
// their heartbeats).
//
// Logs: one JSON line per entry on stdout (workers/logger.ts), customer fields redacted, from the
// worker itself, the SDK, workflow/activity loggers and the SDK's native core (forwarded);
// LOG_LEVEL filters them. "worker started" and "worker stopped" are always written.
// Metrics: METRICS_PORT > 0 serves Prometheus text on /metrics (workers/metrics.ts), including
// the SDK's runtime metrics, which the SDK exports on an internal 127.0.0.1 port.
import os from 'node:os';
import { makeTelemetryFilterString, NativeConnection, Runtime, type LogLevel } from '@temporalio/worker';
import { ConfigError, connectionBudgetProblem, loadConfig, type Config } from '../config';
import { readConnectionLimits } from '../db/sql/read-connection-limits';
import { loadDotEnv } from '../config/dotenv';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { createTwilioSms } from '../providers/sms';
import { createSmtpEmail } from '../providers/email';
import { assertTemplatesFit } from '../domain/template-check';
import { connectionOptions, connectWithRetry } from './connection';
import { createPinresetWorker } from './create-worker';
import { dataConverterFromEnv } from './data-converter';
import { JsonLogger } from './logger';
import { assertSearchAttributes } from './search-attributes-check';
import { PinresetMetrics, runProgressGauges, runRateGauges, startMetricsServer, type MetricsServer } from './metrics';
import { freePort } from './listen';
import { emailRelayKey, smsSenderKey } from '../activities/send-gate';

const base = { service: 'pinreset-worker', pid: process.pid };
/** Until the configuration is read (its errors are logged too). */
let logger = new JsonLogger({ base });

/** Native core logs: as LOG_LEVEL, but core INFO is chatty, so info shows core warnings and up. */
function coreLevel(level: Config['logLevel']): LogLevel {
  return level === 'debug' ? 'DEBUG' : level === 'error' ? 'ERROR' : 'WARN';
}

async function main(): Promise<void> {
  // `.env` (or PINRESET_ENV_FILE) fills in what the environment does not set.
  loadDotEnv();
  const config = loadConfig();
  logger = new JsonLogger({ level: config.logLevel, base });
  const metricsOn = config.worker.metricsPort > 0;
  // A free 127.0.0.1 port for the SDK's internal Prometheus exporter.
  const sdkMetricsPort = metricsOn ? await freePort() : undefined;
  // Before any connection: the runtime is created once per process.
  Runtime.install({
    logger,
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: coreLevel(config.logLevel), other: 'ERROR' }), forward: {} },
      ...(sdkMetricsPort ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkMetricsPort}` } } } : {}),
    },
  });
  // The runtime drains a running worker on these signals; one that arrives during start-up is
  // remembered here and honoured as soon as the worker runs. (No "second signal = exit now":
  // `npm run worker` in a terminal delivers Ctrl-C twice, once from the tty and once from npm.)
  let stopRequested = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stopRequested = true;
      logger.info('shutdown requested: draining', { signal });
    });
  }

  // A bad template must stop the worker before it reaches a single customer.
  assertTemplatesFit(config.message);
  // Payload encryption when PAYLOAD_CODEC_KEY is set (a partial setting throws: no clear text).
  const dataConverter = dataConverterFromEnv(process.env, { refusePlaintext: true });
  const db = createPool(config.database.url, config.database.poolSize);
  if (config.worker.migrateOnStart) await migrate(db);
  // PINRESET_WORKERS x DATABASE_POOL_SIZE must fit the server's connections (config/index.ts).
  const budget = await readConnectionLimits(db);
  const overBudget = connectionBudgetProblem({
    workers: config.worker.processes,
    poolSize: config.database.poolSize,
    reserved: config.worker.dbReservedConnections,
    ...budget,
  });
  if (overBudget) {
    await db.end();
    throw new ConfigError([overBudget]);
  }
  const sms = createTwilioSms({ ...config.sms });
  const email = createSmtpEmail({ url: config.email.url, from: config.email.from });
  const metrics = metricsOn ? new PinresetMetrics() : undefined;
  let metricsServer: MetricsServer | undefined;
  let connection: NativeConnection | undefined;
  let started = false;
  try {
    const options = await connectionOptions(config.temporal);
    connection = await connectWithRetry(() => NativeConnection.connect(options), {
      stopped: () => stopRequested,
      onRetry: (attempt, delayMs, error) =>
        logger.warn('Temporal not reachable yet: retrying', { attempt, delayMs, error: error.message }),
    });
    await assertSearchAttributes(connection, config.temporal.namespace);
    const worker = await createPinresetWorker({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      workflowBundlePath: config.worker.workflowBundlePath,
      maxConcurrentActivities: config.worker.maxConcurrentActivities,
      identity: `pinreset-worker@${os.hostname()}:${process.pid}`,
      deps: {
        db,
        sms,
        email,
        message: config.message,
        sendConcurrency: config.worker.sendConcurrency,
        onSend: metrics?.onSend,
        senders: {
          sms: { key: smsSenderKey(config.sms), defaultRate: config.budgets.sms },
          email: { key: emailRelayKey(config.email.url), defaultRate: config.budgets.email },
        },
        statusCallbackBase: config.callbacks.publicUrl,
        freeze: { chunk: config.worker.freezeChunk, statementTimeoutMs: config.worker.freezeStatementTimeoutMs },
      },
      dataConverter,
    });
    if (metrics) {
      metricsServer = await startMetricsServer({
        port: config.worker.metricsPort,
        metrics,
        sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics`,
        gauges: async () => [
          ...(await runRateGauges(db)),
          ...(await runProgressGauges(db)),
          {
            name: 'pinreset_worker_send_concurrency',
            help: 'SEND_CONCURRENCY: sends in flight per run on this worker.',
            values: [{ value: config.worker.sendConcurrency }],
          },
          {
            name: 'pinreset_worker_max_concurrent_activities',
            help: 'WORKER_MAX_ACTIVITIES: activities run at once by this worker.',
            values: [{ value: config.worker.maxConcurrentActivities }],
          },
        ],
      });
    }
    started = true;
    logger.always('worker started', {
      taskQueue: config.temporal.taskQueue,
      namespace: config.temporal.namespace,
      workflowBundle: config.worker.workflowBundlePath ? 'prebuilt' : 'bundled at start',
      payloadEncryption: dataConverter ? 'on' : 'off',
      metricsPort: metricsServer?.port ?? 0,
    });
    const running = worker.run();
    if (stopRequested && worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  } finally {
    await Promise.allSettled([metricsServer?.close(), connection?.close(), email.close(), db.end()]);
    if (started) logger.always('worker stopped');
  }
}

main().catch((err) => {
  logger.error('worker failed', { error: err });
  process.exitCode = 1;
  // Let forwarded core logs and stdout drain, then leave even if a handle keeps the loop alive.
  setTimeout(() => process.exit(1), 200).unref();
});
