// The worker's JSON logger: one line per entry, LOG_LEVEL filtering, and no customer data in any
// line (sensitive keys and contact-looking values redacted). Then the real worker process: a
// start-up failure is one JSON "worker failed" line, with nothing secret in it.
import { describe, expect, it } from 'vitest';
import {
  isSensitiveKey,
  JsonLogger,
  REDACTED,
  redactText,
  redactValue,
  type JsonLoggerOptions,
} from '../workers/logger';
import { spawnWorker } from '../stack/worker-process';

function capture(level?: JsonLoggerOptions['level']) {
  const lines: string[] = [];
  const logger = new JsonLogger({
    level,
    write: (l) => lines.push(l),
    now: () => new Date('2024-05-01T12:00:00Z'),
    base: { service: 'test' },
  });
  return { logger, lines, entries: () => lines.map((l) => JSON.parse(l)) };
}

describe('JsonLogger', () => {
  it('writes one JSON object per line: time, level, message, base fields, meta', () => {
    const { logger, lines, entries } = capture();
    logger.info('batch done', { runId: 'r-1', first: 1, last: 40, sent: 40, ok: true });
    logger.warn('run auto-paused', { runId: 'r-1', reason: 'auto-paused: 9.0% failed' });
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
    expect(entries()[0]).toEqual({
      ts: '2024-05-01T12:00:00.000Z',
      level: 'info',
      msg: 'batch done',
      service: 'test',
      runId: 'r-1',
      first: 1,
      last: 40,
      sent: 40,
      ok: true,
    });
    expect(entries()[1]).toMatchObject({ level: 'warn', msg: 'run auto-paused', reason: 'auto-paused: 9.0% failed' });
  });

  it('drops entries below LOG_LEVEL, but always writes lifecycle lines', () => {
    const { logger, entries } = capture('warn');
    logger.trace('t');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.log('INFO', 'i2');
    logger.always('worker started', { taskQueue: 'q' });
    expect(entries().map((e) => [e.level, e.msg])).toEqual([
      ['warn', 'w'],
      ['error', 'e'],
      ['info', 'worker started'],
    ]);

    const debug = capture('debug');
    debug.logger.trace('t');
    debug.logger.debug('d');
    expect(debug.entries().map((e) => e.msg)).toEqual(['d']);
    expect(capture('DEBUG').logger.level).toBe('DEBUG');
    expect(() => new JsonLogger({ level: 'verbose' as never })).toThrow(/unknown log level/);
  });

  it('redacts customer and secret fields by key name, whatever the value', () => {
    const { logger, entries } = capture();
    const meta = {
      phone: 'x',
      email: 'x',
      name: 'Jane Doe',
      full_name: 'Jane Doe',
      fullName: 'Jane Doe',
      pin: '1234',
      to: 'x',
      body: 'Your PIN...',
      authToken: 'tok',
      password: 'pw',
      secret: 's',
      customerPhone: '5551234',
      pin_hash: 'ab',
      smtpPassword: 'pw',
      clientSecret: 'c',
      TWILIO_AUTH_TOKEN: 't',
      api_key: 'k',
      nested: { deeper: [{ to: 'someone', accountId: 7 }] },
      // Not customer data, and must stay readable:
      runId: 'r-1',
      pinresetRunId: 'r-1',
      workflowId: 'pinreset-run-r-1',
      taskQueue: 'pinreset',
      accountId: 42,
      spinner: 'x',
      code: '21211',
      attempt: 3,
    };
    logger.info('m', meta);
    const e = entries()[0];
    for (const key of [
      'phone',
      'email',
      'name',
      'full_name',
      'fullName',
      'pin',
      'to',
      'body',
      'authToken',
      'password',
      'secret',
      'customerPhone',
      'pin_hash',
      'smtpPassword',
      'clientSecret',
      'TWILIO_AUTH_TOKEN',
      'api_key',
    ]) {
      expect(e[key], key).toBe(REDACTED);
    }
    expect(e.nested).toEqual({ deeper: [{ to: REDACTED, accountId: 7 }] });
    expect(e).toMatchObject({
      runId: 'r-1',
      pinresetRunId: 'r-1',
      workflowId: 'pinreset-run-r-1',
      taskQueue: 'pinreset',
      accountId: 42,
      spinner: 'x',
      code: '21211',
      attempt: 3,
    });
    expect(JSON.stringify(e)).not.toMatch(/Jane|1234|tok"|"pw"/);
  });

  it('redacts any value that looks like an E.164 number or an email address', () => {
    for (const v of [
      '+14155550001',
      'sent to +14155550001 ok',
      'customer1@mail.example',
      'Carrier <security@carrier.example>',
      'a.b+tag@sub.example.co.uk',
    ]) {
      expect(redactValue(v), v).toBe(REDACTED);
    }
    for (const v of [
      '21211',
      'http_503',
      'INC-2021-0815',
      '2024-05-01T12:00:00Z',
      '127.0.0.1:7233',
      '+1',
      'pinreset-worker@host:123',
      'e2e-small-1',
    ]) {
      expect(redactValue(v), v).toBe(v);
    }
    const { logger, entries } = capture();
    logger.info('m', {
      detail: 'customer +14155550001 opted out',
      list: ['ok', 'x@y.example'],
      recipient2: { addr: 'x@y.example' },
    });
    expect(entries()[0]).toMatchObject({ detail: REDACTED, list: ['ok', REDACTED], recipient2: { addr: REDACTED } });
  });

  it('keeps messages and errors readable, cutting out only the contacts', () => {
    expect(redactText('SMS to +14155550001 and mail to jane@mail.example failed')).toBe(
      `SMS to ${REDACTED} and mail to ${REDACTED} failed`,
    );
    const { logger, entries } = capture();
    const err = Object.assign(new Error("The 'To' number +14155550001 is not valid"), { code: 21211 });
    err.cause = new Error('smtp said <jane@mail.example>: 550');
    logger.error('send failed for +14155550001', { error: err });
    const e = entries()[0];
    expect(e.msg).toBe(`send failed for ${REDACTED}`);
    expect(e.error).toMatchObject({ name: 'Error', message: `The 'To' number ${REDACTED} is not valid`, code: 21211 });
    expect(e.error.cause.message).toBe(`smtp said <${REDACTED}>: 550`);
    expect(e.error.stack).toContain('is not valid');
    expect(JSON.stringify(e)).not.toMatch(/4155550001|jane@/);
  });

  it('never throws on awkward meta: cycles, bigints, dates, buffers, symbols, reserved keys', () => {
    const { logger, entries } = capture();
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    logger.info('m', {
      cyclic,
      big: 10n ** 20n,
      when: new Date('2024-01-01T00:00:00Z'),
      buf: Buffer.from('abc'),
      sym: Symbol('s'),
      fn: () => 1,
      inf: Infinity,
      undef: undefined,
      msg: 'meta msg',
      level: 'meta level',
      map: new Map([['phone', '+14155550001']]),
    });
    const e = entries()[0];
    expect(e).toMatchObject({
      msg: 'm',
      level: 'info',
      meta_msg: 'meta msg',
      meta_level: 'meta level',
      cyclic: { a: 1, self: '[circular]' },
      big: '100000000000000000000',
      when: '2024-01-01T00:00:00.000Z',
      buf: '[3 bytes]',
      inf: 'Infinity',
      map: { phone: REDACTED },
    });
    expect('sym' in e || 'fn' in e || 'undef' in e).toBe(false);
    expect(() =>
      new JsonLogger({
        write: () => {
          throw new Error('EPIPE');
        },
      }).info('x'),
    ).not.toThrow();
  });

  it('classifies key names', () => {
    for (const k of [
      'phone',
      'Phone',
      'phone_number',
      'email',
      'emailAddress',
      'full_name',
      'pin',
      'newPin',
      'to',
      'body',
      'authToken',
      'auth_token',
      'TWILIO_AUTH_TOKEN',
      'TEMPORAL_API_KEY',
      'password',
      'secret',
      'pin_salt',
      'taskToken',
    ]) {
      expect(isSensitiveKey(k), k).toBe(true);
    }
    for (const k of [
      'runId',
      'pinresetRunId',
      'PinresetPhase',
      'taskQueue',
      'workflowId',
      'activityType',
      'total',
      'token_bucket_size',
      'spin',
      'accountId',
    ]) {
      expect(isSensitiveKey(k), k).toBe(false);
    }
  });
});

describe('the worker process logs', () => {
  it('a start-up failure as one JSON "worker failed" line, exit code 1, no secrets', async () => {
    const w = spawnWorker({
      DATABASE_URL: 'postgres://u:pw@127.0.0.1:1/db',
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      SMTP_URL: 'smtp://127.0.0.1:1',
      EMAIL_FROM: 'Security <security@carrier.example>',
      TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 'super-secret-token',
      TWILIO_FROM: 'not-a-number',
      LOG_LEVEL: 'warn',
      METRICS_PORT: '0',
    });
    w.ready.catch(() => undefined); // it never gets ready
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    const lines = w.output().split('\n').filter(Boolean);
    const entries = lines.map((l) => JSON.parse(l));
    const failed = entries.find((e) => e.msg === 'worker failed');
    expect(failed).toMatchObject({ level: 'error', service: 'pinreset-worker', error: { name: 'ConfigError' } });
    expect(failed.error.message).toContain('TWILIO_FROM must be an E.164 number');
    expect(w.output()).not.toContain('super-secret-token');
  });
});
