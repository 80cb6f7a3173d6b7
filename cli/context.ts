// What a CLI command needs, opened on first use and closed once: the configuration, a PostgreSQL
// pool and a Temporal client. A command that needs only the database never requires Temporal
// settings.
import os from 'node:os';
import { loadConfig, type Config, type Section } from '../config';
import { createPool, type Db } from '../db/pool';
import { OperationFailedError } from '../run-api/errors';
import { connectTemporal, type TemporalClient } from '../run-api/temporal-client';

export class CliContext {
  private config?: Config;
  private pool?: Db;
  private temporal?: Promise<TemporalClient>;

  constructor(
    private readonly sections: Section[],
    private readonly env: Record<string, string | undefined> = process.env,
  ) {}

  /** Throws ConfigError (exit 2) naming every missing or bad variable. */
  get cfg(): Config {
    this.config ??= loadConfig(this.env, this.sections);
    return this.config;
  }

  async db(): Promise<Db> {
    if (!this.pool) {
      const pool = createPool(this.cfg.database.url, 4);
      try {
        await pool.query('SELECT 1');
      } catch (err) {
        await pool.end().catch(() => undefined);
        throw new OperationFailedError(`cannot reach PostgreSQL (DATABASE_URL): ${(err as Error).message}`);
      }
      this.pool = pool;
    }
    return this.pool;
  }

  /** Connects on first use; after a failed attempt the next call tries again (status --watch). */
  temporalClient(connectTimeoutMs?: number): Promise<TemporalClient> {
    if (!this.temporal) {
      const attempt = connectTemporal(this.cfg.temporal, connectTimeoutMs);
      this.temporal = attempt;
      attempt.catch(() => {
        if (this.temporal === attempt) this.temporal = undefined;
      });
    }
    return this.temporal;
  }

  async close(): Promise<void> {
    const t = this.temporal;
    this.temporal = undefined;
    await Promise.allSettled([
      this.pool?.end(),
      t?.then(
        (c) => c.close(),
        () => undefined,
      ),
    ]);
  }
}

export function defaultOperator(env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env.USER?.trim() || env.LOGNAME?.trim();
  if (fromEnv) return fromEnv;
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}
