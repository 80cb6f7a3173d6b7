// JSON logs for the worker: one line per entry on stdout, for the SDK (Runtime.install({ logger })),
// workflow and activity context loggers, native Core logs (forwarded) and the worker's own lines.
// Customer data never reaches a log line: meta keys that name contact or secret fields are
// redacted whatever their value, and any string value that looks like a phone number (E.164) or
// an email address is redacted wherever it appears.
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';

export const REDACTED = '[redacted]';

/** Config's LOG_LEVEL values, lower case. */
type ConfigLogLevel = 'debug' | 'info' | 'warn' | 'error';

const SEVERITY: Record<LogLevel, number> = { TRACE: 10, DEBUG: 20, INFO: 30, WARN: 40, ERROR: 50 };

function sdkLogLevel(level: ConfigLogLevel | LogLevel): LogLevel {
  const upper = level.toUpperCase() as LogLevel;
  if (!(upper in SEVERITY)) throw new Error(`unknown log level ${level}`);
  return upper;
}

// ---- redaction --------------------------------------------------------------------------------

/** Keys redacted whatever their value (compared lower case, without "_" and "-"). */
const SENSITIVE_KEYS = new Set([
  'phone',
  'phonenumber',
  'mobile',
  'msisdn',
  'email',
  'emailaddress',
  'name',
  'fullname',
  'firstname',
  'lastname',
  'customername',
  'displayname',
  'pin',
  'newpin',
  'oldpin',
  'to',
  'recipient',
  'body',
  'text',
  'authtoken',
  'password',
  'passwd',
  'secret',
  'apikey',
  'token',
  'accountnumber',
  'pepper',
]);

/** Word parts that make any key sensitive: customerPhone, pin_hash, clientSecret, smtpPassword... */
const SENSITIVE_WORDS = new Set(['phone', 'email', 'pin', 'password', 'passwd', 'secret', 'pepper']);

function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

/** Endings that make any key sensitive: TWILIO_AUTH_TOKEN, TEMPORAL_API_KEY, accessToken... */
const SENSITIVE_ENDINGS = ['token', 'apikey', 'password', 'passwd', 'secret', 'pepper'];

export function isSensitiveKey(key: string): boolean {
  const flat = key.toLowerCase().replace(/[_-]/g, '');
  if (SENSITIVE_KEYS.has(flat) || SENSITIVE_ENDINGS.some((e) => flat.endsWith(e))) return true;
  return words(key).some((w) => SENSITIVE_WORDS.has(w));
}

/** E.164: "+", a non-zero digit, 7 to 14 more digits (no separators). */
const E164 = /\+[1-9]\d{6,14}(?!\d)/;
/** A pragmatic email address: local@domain.tld. */
const EMAIL = /[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;
const E164_ALL = new RegExp(E164.source, 'g');
const EMAIL_ALL = new RegExp(EMAIL.source, 'g');

function looksLikeContact(value: string): boolean {
  return E164.test(value) || EMAIL.test(value);
}

/** Free text (log messages, error messages, stacks): only the matching parts are replaced. */
export function redactText(text: string): string {
  return text.replace(EMAIL_ALL, REDACTED).replace(E164_ALL, REDACTED);
}

const MAX_DEPTH = 6;
const MAX_ITEMS = 50;

/** A JSON-safe, redacted copy of a meta value. */
export function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === undefined || value === null) return value; // undefined: the key is left out
  switch (typeof value) {
    case 'string':
      return looksLikeContact(value) ? REDACTED : value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'symbol':
    case 'function':
      return undefined;
  }
  const obj = value as object;
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? null : obj.toISOString();
  if (obj instanceof Error) return redactError(obj, depth, seen);
  if (Buffer.isBuffer(obj) || obj instanceof Uint8Array) return `[${obj.byteLength} bytes]`;
  if (seen.has(obj)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[nested]';
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      const items = obj.slice(0, MAX_ITEMS).map((v) => redactValue(v, depth + 1, seen) ?? null);
      if (obj.length > MAX_ITEMS) items.push(`[${obj.length - MAX_ITEMS} more]`);
      return items;
    }
    if (obj instanceof Map)
      return redactObject(Object.fromEntries([...obj.entries()].map(([k, v]) => [String(k), v])), depth, seen);
    if (obj instanceof Set) return redactValue([...obj], depth, seen);
    return redactObject(obj as Record<string, unknown>, depth, seen);
  } finally {
    seen.delete(obj);
  }
}

function redactObject(obj: Record<string, unknown>, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const key of Object.keys(obj)) {
    if (++n > MAX_ITEMS) {
      out['…'] = `${Object.keys(obj).length - MAX_ITEMS} more keys`;
      break;
    }
    const v = obj[key];
    if (isSensitiveKey(key)) {
      if (v !== undefined) out[key] = REDACTED;
      continue;
    }
    const r = redactValue(v, depth + 1, seen);
    if (r !== undefined) out[key] = r;
  }
  return out;
}

function redactError(err: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  // Error messages are kept (they are how a failure is understood) with contacts cut out.
  const out: Record<string, unknown> = { name: err.name, message: redactText(err.message) };
  const { code, type } = err as Error & { code?: unknown; type?: unknown };
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  if (typeof type === 'string') out.type = type;
  if (err.stack) out.stack = redactText(err.stack);
  if (err.cause !== undefined && depth < MAX_DEPTH) out.cause = redactValue(err.cause, depth + 1, seen);
  return out;
}

// ---- the logger -------------------------------------------------------------------------------

export interface JsonLoggerOptions {
  /** Entries below this level are dropped (LOG_LEVEL). Default info. */
  level?: ConfigLogLevel | LogLevel;
  /** Where each line goes; default stdout. */
  write?: (line: string) => void;
  now?: () => Date;
  /** Fields on every line, e.g. { service: 'pinreset-worker', pid }. Redacted like meta. */
  base?: Record<string, unknown>;
}

const RESERVED = new Set(['ts', 'level', 'msg']);

export class JsonLogger implements Logger {
  readonly level: LogLevel;
  private readonly severity: number;
  private readonly write: (line: string) => void;
  private readonly now: () => Date;
  private readonly base: Record<string, unknown>;

  constructor(opts: JsonLoggerOptions = {}) {
    this.level = sdkLogLevel(opts.level ?? 'info');
    this.severity = SEVERITY[this.level];
    this.write = opts.write ?? ((line) => process.stdout.write(`${line}\n`));
    this.now = opts.now ?? (() => new Date());
    this.base = redactObject(opts.base ?? {}, 0, new WeakSet());
  }

  isEnabled(level: LogLevel): boolean {
    return SEVERITY[level] >= this.severity;
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (this.isEnabled(level)) this.emit(level, message, meta);
  }

  /**
   * Lifecycle lines ("worker started", "worker stopped") are written whatever LOG_LEVEL says:
   * supervisors and tests wait for them.
   */
  always(message: string, meta?: LogMetadata): void {
    this.emit('INFO', message, meta);
  }

  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }

  private emit(level: LogLevel, message: string, meta?: LogMetadata): void {
    const entry: Record<string, unknown> = {
      ts: this.now().toISOString(),
      level: level.toLowerCase(),
      msg: redactText(String(message)),
    };
    const fields = meta ? redactObject(Object.fromEntries(Object.entries(meta)), 0, new WeakSet()) : {};
    for (const [k, v] of Object.entries({ ...this.base, ...fields })) entry[RESERVED.has(k) ? `meta_${k}` : k] = v;
    let line: string;
    try {
      line = JSON.stringify(entry);
    } catch {
      line = JSON.stringify({ ts: entry.ts, level: entry.level, msg: entry.msg, logError: 'meta not serializable' });
    }
    try {
      this.write(line);
    } catch {
      // A log line must never take the worker down (e.g. stdout closed by the supervisor).
    }
  }
}
