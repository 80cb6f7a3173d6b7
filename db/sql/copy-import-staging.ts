// Streams COPY text rows into the staging table (pg-copy-streams): no row is held in memory
// beyond the stream's buffer, whatever the file size.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql } from '../pool';
import { from as copyFrom } from 'pg-copy-streams';
import { STAGING_COLUMNS, STAGING_TABLE } from './import-staging';

/** `rows` yields chunks of COPY text (one or more complete lines each). Returns rows copied. */
export async function copyIntoImportStaging(client: Sql, rows: AsyncIterable<string>): Promise<number> {
  const copy = client.query(copyFrom(`COPY ${STAGING_TABLE} (${STAGING_COLUMNS.join(', ')}) FROM STDIN`));
  await pipeline(Readable.from(rows), copy);
  return copy.rowCount;
}
