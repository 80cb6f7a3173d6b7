// Synthetic prepaid accounts for demos, load tests and tests. The data is generated in SQL
// (db/sql/seed-accounts.ts documents each share); this module picks the ids and runs it in one
// transaction, so a seed lands whole or not at all.
//
// Documented shares (per account; the tests hold the generator to them):
//   phone:  85% valid mobile E.164 (+1 NPA 555 XXXX), 4% landline, 2% voip, 4% valid with type
//           'unknown', 3% missing, 2% invalid text (e.g. 7 digits, "n/a", an extension)
//   email:  84% valid (~5% of them plus-tagged, ~9% on IDN domains), 15% missing, 1% invalid
//   opt-out: 2% SMS, 0.5% email; status: 2% closed, 1% suspended, 97% active
//   shared contact: 1% carry the phone and email of another account (so ~2% are in a shared pair)
//   names: Latin with accents and apostrophes, 8% CJK, some middle initials and double-barrelled
//   PIN: placeholder verifier bytes, pin_algo 'synthetic' (see db/sql/seed-accounts.ts for why)
import type { Db } from '../db/pool';
import { lockAccountsForBulkInsert } from '../db/sql/lock-accounts';
import { nextAccountId } from '../db/sql/next-account-id';
import { countSeedCategories, insertSeedAccounts, type SeedCategoryCounts } from '../db/sql/seed-accounts';
import { truncateAccounts } from '../db/sql/truncate-accounts';

export const DEFAULT_SEED = 1;
/** Keeps `$seed * 32 + k` (the hash stream key) far inside bigint. */
export const MAX_SEED = 2 ** 40;

export interface SeedOptions {
  count: number;
  seed?: number;
  /** Delete every existing account first (demo data only!). */
  truncate?: boolean;
}

export interface SeedResult extends SeedCategoryCounts {
  seed: number;
  count: number;
  firstId: number;
  lastId: number;
  /** Accounts deleted by `truncate`. */
  truncated: number;
  durationMs: number;
}

export async function seedAccounts(db: Db, opts: SeedOptions): Promise<SeedResult> {
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!Number.isSafeInteger(opts.count) || opts.count < 1) throw new Error('count must be a positive integer');
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > MAX_SEED)
    throw new Error(`seed must be an integer from 0 to ${MAX_SEED}`);
  const started = Date.now();
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const truncated = opts.truncate ? await truncateAccounts(client) : 0;
    await lockAccountsForBulkInsert(client);
    const firstId = await nextAccountId(client);
    // The counts re-run the generator without writing: on a second connection they use the
    // otherwise idle second core while this one inserts (a one-connection pool would deadlock).
    const [inserted, counts] = await Promise.all([
      insertSeedAccounts(client, seed, firstId, opts.count),
      countSeedCategories((db.options.max ?? 10) > 1 ? db : client, seed, firstId, opts.count),
    ]);
    await client.query('COMMIT');
    return {
      seed,
      count: inserted,
      firstId,
      lastId: firstId + inserted - 1,
      truncated,
      durationMs: Date.now() - started,
      ...counts,
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
