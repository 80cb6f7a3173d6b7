// Serializes bulk writers of `accounts` (seed) within a transaction: taken before reading max(id),
// so two concurrent seeds cannot pick the same ids. Plain reads are not blocked.
import type { Sql } from '../pool';

export async function lockAccountsForBulkInsert(client: Sql): Promise<void> {
  await client.query('LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE');
}
