import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config';

const good = {
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/pinreset',
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  TWILIO_ACCOUNT_SID: 'AC' + '0'.repeat(32),
  TWILIO_AUTH_TOKEN: 'secret-token-value',
  TWILIO_FROM: '+15550000000',
  SMTP_URL: 'smtp://127.0.0.1:2525',
  EMAIL_FROM: 'Security <security@carrier.example>',
};

function problems(env: Record<string, string>, need?: Parameters<typeof loadConfig>[1]): string[] {
  try {
    loadConfig(env, need);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
}

describe('config', () => {
  it('reads a complete environment with defaults', () => {
    const c = loadConfig(good);
    expect(c.temporal).toMatchObject({ namespace: 'default', taskQueue: 'pinreset' });
    expect(c.database.poolSize).toBe(10);
    expect(c.worker.sendConcurrency).toBe(48);
  });
  it('names every missing variable at once', () => {
    const p = problems({});
    for (const name of [
      'DATABASE_URL',
      'TEMPORAL_ADDRESS',
      'TWILIO_ACCOUNT_SID',
      'TWILIO_AUTH_TOKEN',
      'TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID',
      'SMTP_URL',
      'EMAIL_FROM',
    ]) {
      expect(p.some((m) => m.startsWith(name))).toBe(true);
    }
  });
  it('names malformed values without echoing secrets', () => {
    const p = problems({
      ...good,
      DATABASE_URL: 'mysql://x',
      TEMPORAL_ADDRESS: 'nohost',
      TWILIO_ACCOUNT_SID: 'XX1',
      SEND_CONCURRENCY: '-3',
      SMTP_URL: '::',
      LOG_LEVEL: 'loud',
      TWILIO_AUTH_TOKEN: 'supersecret',
      TEMPORAL_TLS_CERT: '/c.pem',
    });
    const text = p.join('\n');
    expect(text).toMatch(/DATABASE_URL must use postgres/);
    expect(text).toMatch(/TEMPORAL_ADDRESS must be host:port/);
    expect(text).toMatch(/TWILIO_ACCOUNT_SID must be AC/);
    expect(text).toMatch(/SEND_CONCURRENCY must be an integer/);
    expect(text).toMatch(/SMTP_URL is not a valid URL/);
    expect(text).toMatch(/LOG_LEVEL/);
    expect(text).toMatch(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/);
    expect(text).not.toContain('supersecret');
  });
  it('asks only for the sections a script needs', () => {
    expect(problems({ DATABASE_URL: good.DATABASE_URL }, ['database'])).toEqual([]);
    expect(problems({}, ['database'])).toEqual(['DATABASE_URL is missing (expected a postgres or postgresql URL)']);
  });
});
