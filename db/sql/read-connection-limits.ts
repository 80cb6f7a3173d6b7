import type { Sql } from '../pool';

/** The server's connection limits, for the workers' connection budget (config/index.ts). */
export async function readConnectionLimits(db: Sql): Promise<{ maxConnections: number; superuserReserved: number }> {
  const res = await db.query<{ max: string; reserved: string }>(
    "SELECT current_setting('max_connections') AS max, current_setting('superuser_reserved_connections') AS reserved",
  );
  return { maxConnections: Number(res.rows[0].max), superuserReserved: Number(res.rows[0].reserved) };
}
