// One validated configuration for workers and scripts: environment in, typed config out.
// Every problem is collected and reported together, each naming its variable; values of secrets
// are never echoed.
import { DEFAULT_PARAMS, LIMITS, MIN_RATE } from '../domain/run';

export interface DatabaseConfig {
  url: string;
  poolSize: number;
}

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Web UI base address, for links printed by scripts; '' when unknown (no guessed port). */
  uiUrl: string;
  apiKey?: string;
  tls?: { serverName?: string; caPath?: string; certPath?: string; keyPath?: string };
}

export interface SmsConfig {
  accountSid: string;
  authToken: string;
  from?: string;
  messagingServiceSid?: string;
  apiUrl?: string;
  statusCallbackUrl?: string;
}

export interface EmailConfig {
  url: string;
  from: string;
}

export interface MessageConfig {
  carrierName: string;
  /** Where a customer sets a new PIN (shown in SMS and email). */
  resetUrl: string;
  /** Domain of deterministic email Message-IDs. */
  messageIdDomain: string;
  /**
   * Senders, frozen in the run's row with the text when the CLI knows them (TWILIO_FROM or
   * TWILIO_MESSAGING_SERVICE_SID, EMAIL_FROM): every worker then sends as the same sender.
   */
  smsFrom?: string;
  smsMessagingServiceSid?: string;
  emailFrom?: string;
}

export interface WorkerConfig {
  /** Notify activities run at once on one worker. */
  maxConcurrentActivities: number;
  /** Sends in flight per run on one worker, shared by that run's notify activities there. */
  sendConcurrency: number;
  /** Prometheus metrics port; 0 = off. */
  metricsPort: number;
  /** Prebuilt workflow bundle (production); unset = bundle at start. */
  workflowBundlePath?: string;
  /** Apply the migrations at start (local and single-node setups; production runs `migrate` once). */
  migrateOnStart: boolean;
  /** The cohort freeze: accounts per chunk (one short transaction each) and its statement timeout. */
  freezeChunk: number;
  freezeStatementTimeoutMs: number;
  /** PINRESET_WORKERS: worker processes on the task queue (sizes the notify window and the connection budget). */
  processes: number;
  /** DATABASE_RESERVED_CONNECTIONS: connections kept for everything but the workers (CLI, callbacks, migrations, psql). */
  dbReservedConnections: number;
}

/**
 * Notify batches in flight by default: two per worker process, so every worker has one batch
 * sending and one waiting (a fixed 8 left workers 9..20 idle), at least the run default (8),
 * at most the parameter's limit (200). `--concurrency` still overrides it per run.
 */
export function notifyBatchesInFlight(workers: number): number {
  return Math.min(LIMITS.batchConcurrency.max, Math.max(DEFAULT_PARAMS.batchConcurrency, 2 * workers));
}

/** The notify window for `plan` and `start`, from PINRESET_WORKERS (validated like the rest). */
export function notifyBatchesFromEnv(env: Env = process.env): number {
  const r = new Reader(env);
  const workers = r.int('PINRESET_WORKERS', 1, 1, 1000);
  if (r.problems.length) throw new ConfigError(r.problems);
  return notifyBatchesInFlight(workers);
}

/**
 * PostgreSQL connections, budgeted. Each worker process opens up to DATABASE_POOL_SIZE
 * connections, so
 *   PINRESET_WORKERS x DATABASE_POOL_SIZE + DATABASE_RESERVED_CONNECTIONS
 *     <= max_connections - superuser_reserved_connections
 * (20 workers x 10 + 10 = 210: over PostgreSQL's default max_connections of 100). A Temporal
 * server whose persistence shares the same PostgreSQL server counts in the reserve. The worker
 * checks this against the server at start and refuses to start when it does not hold.
 */
export function connectionBudgetProblem(b: {
  workers: number;
  poolSize: number;
  reserved: number;
  maxConnections: number;
  superuserReserved: number;
}): string | undefined {
  const need = b.workers * b.poolSize + b.reserved;
  const available = b.maxConnections - b.superuserReserved;
  if (need <= available) return undefined;
  return (
    `PostgreSQL connections over budget: PINRESET_WORKERS (${b.workers}) x DATABASE_POOL_SIZE (${b.poolSize}) + DATABASE_RESERVED_CONNECTIONS (${b.reserved}) = ${need}, ` +
    `but the server allows ${available} (max_connections ${b.maxConnections} - superuser_reserved_connections ${b.superuserReserved}); ` +
    'lower DATABASE_POOL_SIZE, run fewer workers or raise max_connections'
  );
}

export interface CallbacksConfig {
  /** Public URL of the status-callback endpoint as Twilio calls it (validated signatures depend on it). */
  publicUrl?: string;
  /** Port of the callback receiver (`npm run callbacks`). */
  port: number;
  /** Interface it listens on. */
  host: string;
  /** Largest accepted callback body, bytes. */
  maxBodyBytes: number;
  /** SendGrid Event Webhook verification key (base64 DER); unset = email bounce route off. */
  sendgridPublicKey?: string;
}

/** Default send budgets per sender, messages/s for all runs and workers together. */
export interface BudgetConfig {
  sms: number;
  email: number;
}

export interface Config {
  database: DatabaseConfig;
  callbacks: CallbacksConfig;
  budgets: BudgetConfig;
  temporal: TemporalConfig;
  sms: SmsConfig;
  email: EmailConfig;
  message: MessageConfig;
  worker: WorkerConfig;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export type Section = 'database' | 'temporal' | 'sms' | 'email' | 'callbacks';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  optional(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v ? v : undefined;
  }

  required(name: string, required: boolean, hint: string): string {
    const v = this.optional(name);
    if (v === undefined && required) this.problems.push(`${name} is missing (${hint})`);
    return v ?? '';
  }

  url(name: string, required: boolean, protocols: string[], fallback?: string): string {
    const v = this.optional(name) ?? fallback;
    if (v === undefined) {
      if (required) this.problems.push(`${name} is missing (expected a ${protocols.join(' or ')} URL)`);
      return '';
    }
    let parsed: URL;
    try {
      parsed = new URL(v);
    } catch {
      this.problems.push(`${name} is not a valid URL`);
      return '';
    }
    if (!protocols.includes(parsed.protocol.replace(/:$/, ''))) {
      this.problems.push(`${name} must use ${protocols.join(' or ')}, got ${parsed.protocol.replace(/:$/, '')}`);
    }
    return v;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.optional(name);
    if (v === undefined) return fallback;
    if (v === 'true' || v === 'false') return v === 'true';
    this.problems.push(`${name} must be true or false`);
    return fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.optional(name);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
      return fallback;
    }
    return Number(v);
  }

  /** A rate: a number of messages/s from `min`, or the word 'unlimited' (Infinity). */
  rate(name: string, fallback: number, min: number): number {
    const v = this.optional(name);
    if (v === undefined) return fallback;
    if (v === 'unlimited') return Infinity;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > 100_000) {
      this.problems.push(`${name} must be a rate from ${min} to 100000 messages/s or 'unlimited', got "${v}"`);
      return fallback;
    }
    return n;
  }

  pattern(name: string, value: string | undefined, re: RegExp, what: string): void {
    if (value !== undefined && value !== '' && !re.test(value)) this.problems.push(`${name} must be ${what}`);
  }
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/**
 * Reads the configuration. `need` names the sections whose variables must be present: scripts
 * that only read the database need not carry Twilio credentials.
 */
export function loadConfig(env: Env = process.env, need: Section[] = ['database', 'temporal', 'sms', 'email']): Config {
  const r = new Reader(env);
  const needs = (s: Section) => need.includes(s);

  const database: DatabaseConfig = {
    url: r.url('DATABASE_URL', needs('database'), ['postgres', 'postgresql']),
    poolSize: r.int('DATABASE_POOL_SIZE', 10, 1, 200),
  };

  const address = r.required(
    'TEMPORAL_ADDRESS',
    needs('temporal'),
    'host:port of the Temporal frontend, e.g. 127.0.0.1:7233',
  );
  r.pattern('TEMPORAL_ADDRESS', address, /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'host:port, e.g. 127.0.0.1:7233');
  const tlsCert = r.optional('TEMPORAL_TLS_CERT');
  const tlsKey = r.optional('TEMPORAL_TLS_KEY');
  if (Boolean(tlsCert) !== Boolean(tlsKey))
    r.problems.push('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (mTLS)');
  const tlsOn = r.optional('TEMPORAL_TLS') === 'true' || Boolean(tlsCert) || Boolean(r.optional('TEMPORAL_TLS_CA'));
  const temporal: TemporalConfig = {
    address,
    namespace: r.optional('TEMPORAL_NAMESPACE') ?? 'default',
    taskQueue: r.optional('TEMPORAL_TASK_QUEUE') ?? 'pinreset',
    // No default: the UI's port depends on the deployment (compose 8080, the demo a free port), and
    // a guessed one gave links to the wrong place.
    uiUrl: r.optional('TEMPORAL_UI_URL') ? r.url('TEMPORAL_UI_URL', false, ['http', 'https']) : '',
    apiKey: r.optional('TEMPORAL_API_KEY'),
    tls: tlsOn
      ? {
          serverName: r.optional('TEMPORAL_TLS_SERVER_NAME'),
          caPath: r.optional('TEMPORAL_TLS_CA'),
          certPath: tlsCert,
          keyPath: tlsKey,
        }
      : undefined,
  };

  const sms: SmsConfig = {
    accountSid: r.required('TWILIO_ACCOUNT_SID', needs('sms'), 'Twilio account SID, AC followed by 32 hex digits'),
    authToken: r.required('TWILIO_AUTH_TOKEN', needs('sms'), 'Twilio auth token'),
    from: r.optional('TWILIO_FROM'),
    messagingServiceSid: r.optional('TWILIO_MESSAGING_SERVICE_SID'),
    apiUrl: r.optional('TWILIO_API_URL') ? r.url('TWILIO_API_URL', false, ['http', 'https']) : undefined,
    statusCallbackUrl: r.optional('TWILIO_STATUS_CALLBACK_URL')
      ? r.url('TWILIO_STATUS_CALLBACK_URL', false, ['http', 'https'])
      : undefined,
  };
  r.pattern('TWILIO_ACCOUNT_SID', sms.accountSid, /^AC[0-9a-fA-F]{32}$/, 'AC followed by 32 hex digits');
  r.pattern(
    'TWILIO_MESSAGING_SERVICE_SID',
    sms.messagingServiceSid,
    /^MG[0-9a-fA-F]{32}$/,
    'MG followed by 32 hex digits',
  );
  r.pattern('TWILIO_FROM', sms.from, /^\+[1-9]\d{1,14}$|^\d{5,6}$/, 'an E.164 number (+15551234567) or a short code');
  if (needs('sms') && !sms.from && !sms.messagingServiceSid) {
    r.problems.push('TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is missing (the SMS sender)');
  }

  const email: EmailConfig = {
    url: r.url('SMTP_URL', needs('email'), ['smtp', 'smtps']),
    from: r.required('EMAIL_FROM', needs('email'), 'sender address, e.g. "Carrier Security <security@example.com>"'),
  };
  r.pattern(
    'EMAIL_FROM',
    email.from,
    /^(.*<)?[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>?$/,
    'an email address, optionally "Name <addr>"',
  );

  const message: MessageConfig = {
    carrierName: r.optional('CARRIER_NAME') ?? 'Your carrier',
    resetUrl: r.url('RESET_URL', false, ['https', 'http'], 'https://example.com/pin'),
    messageIdDomain: r.optional('MESSAGE_ID_DOMAIN') ?? 'pinreset.invalid',
  };

  const worker: WorkerConfig = {
    maxConcurrentActivities: r.int('WORKER_MAX_ACTIVITIES', 16, 1, 1000),
    sendConcurrency: r.int('SEND_CONCURRENCY', 48, 1, 1000),
    metricsPort: r.int('METRICS_PORT', 0, 0, 65535),
    workflowBundlePath: r.optional('WORKFLOW_BUNDLE_PATH'),
    migrateOnStart: r.bool('PINRESET_MIGRATE_ON_START', false),
    freezeChunk: r.int('FREEZE_CHUNK', 100_000, 1_000, 10_000_000),
    freezeStatementTimeoutMs: r.int('FREEZE_STATEMENT_TIMEOUT_MS', 60_000, 1_000, 3_600_000),
    processes: r.int('PINRESET_WORKERS', 1, 1, 1000),
    dbReservedConnections: r.int('DATABASE_RESERVED_CONNECTIONS', 10, 0, 10_000),
  };

  const callbacks: CallbacksConfig = {
    publicUrl: r.url('PUBLIC_CALLBACK_URL', needs('callbacks'), ['https', 'http']) || undefined,
    port: r.int('CALLBACKS_PORT', 8088, 0, 65535),
    host: r.optional('CALLBACKS_HOST') ?? '0.0.0.0',
    maxBodyBytes: r.int('CALLBACKS_MAX_BODY_BYTES', 16 * 1024, 512, 1024 * 1024),
    sendgridPublicKey: r.optional('SENDGRID_WEBHOOK_PUBLIC_KEY'),
  };
  if (callbacks.publicUrl) {
    const u = new URL(callbacks.publicUrl);
    if (u.search || u.hash)
      r.problems.push(
        'PUBLIC_CALLBACK_URL must have no query or #fragment (run, ref and the retry fragment are added per message)',
      );
  }
  r.pattern(
    'SENDGRID_WEBHOOK_PUBLIC_KEY',
    callbacks.sendgridPublicKey,
    /^[A-Za-z0-9+/=]{40,400}$/,
    'the base64 verification key shown by SendGrid',
  );

  const budgets: BudgetConfig = {
    sms: r.rate('SMS_SENDER_RATE', 100, MIN_RATE),
    email: r.rate('EMAIL_RELAY_RATE', 200, MIN_RATE),
  };

  const level = r.optional('LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    r.problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  if (r.problems.length) throw new ConfigError(r.problems);
  return { database, callbacks, budgets, temporal, sms, email, message, worker, logLevel: level as Config['logLevel'] };
}
