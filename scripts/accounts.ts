// `npx tsx scripts/accounts.ts <command>`: load and inspect the accounts table.
//   import <file.csv> [--errors <path>] [--strict] [--ignore-pins]
//   seed --count <n> [--seed <s>] [--truncate]
//   stats
// Reads DATABASE_URL (and PIN_PEPPER / PIN_PEPPER_ID for a CSV with a pin column); applies
// migrations first. The logic lives in accounts/ and db/sql/; this is only the shell.
// Exit codes: 0 done, 1 --strict refused the import, 2 bad input or configuration.
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config';
import { loadDotEnv } from '../config/dotenv';
import { createPool, type Db } from '../db/pool';
import { migrate } from '../db/migrate';
import { accountStats } from '../db/sql/account-stats';
import { importAccounts } from '../accounts/import';
import { seedAccounts, DEFAULT_SEED, MAX_SEED } from '../accounts/seed';
import { loadPepper } from '../accounts/pepper';
import { formatImport, formatSeed, formatStats } from '../accounts/format';

function integer(min: number, max: number) {
  return (v: string): number => {
    const x = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(x) || x < min || x > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return x;
  };
}

async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  loadDotEnv();
  const config = loadConfig(process.env, ['database']);
  const db = createPool(config.database.url, Math.max(2, config.database.poolSize));
  try {
    await migrate(db);
    return await fn(db);
  } finally {
    await db.end();
  }
}

const program = new Command('accounts').description('Import, seed and inspect prepaid accounts');

program
  .command('import')
  .description(
    'Import accounts from a CSV file (header: id,account_number,full_name,phone,phone_type,email,plan,status,sms_opt_out,email_opt_out[,pin])',
  )
  .argument('<file>', 'CSV file, UTF-8, RFC 4180 quoting')
  .option('--errors <path>', 'problem report (default: <file>.errors.csv)')
  .option('--strict', 'import nothing if any row is rejected')
  .option('--ignore-pins', 'ignore a pin column instead of hashing it (needs PIN_PEPPER otherwise)')
  .action(async (file: string, o: { errors?: string; strict?: boolean; ignorePins?: boolean }) => {
    const pins = !o.ignorePins;
    const result = await withDb((db) =>
      importAccounts(db, {
        file,
        errorsPath: o.errors,
        strict: o.strict,
        pins,
        pepper: pins ? loadPepper() : undefined,
      }),
    );
    console.log(formatImport(result));
    if (result.aborted) process.exitCode = 1;
  });

program
  .command('seed')
  .description('Generate synthetic prepaid accounts (ids continue after the largest existing id)')
  .requiredOption('--count <n>', 'accounts to generate', integer(1, 100_000_000))
  .option('--seed <s>', 'random seed: the same seed gives the same accounts', integer(0, MAX_SEED), DEFAULT_SEED)
  .option('--truncate', 'delete ALL existing accounts first (demo/test databases only)')
  .action(async (o: { count: number; seed: number; truncate?: boolean }) => {
    const result = await withDb((db) => seedAccounts(db, { count: o.count, seed: o.seed, truncate: o.truncate }));
    console.log(formatSeed(result));
  });

program
  .command('stats')
  .description('Counts by status, phone validity, phone type, email presence, opt-outs and PIN state')
  .action(async () => {
    console.log(formatStats(await withDb((db) => accountStats(db))));
  });

try {
  await program.parseAsync();
} catch (err) {
  // ImportFileError, ConfigError and the rest name files, variables and rules, never customer
  // values (pg's messages do not carry row values; its `detail` field, which can, is not printed).
  console.error(`error: ${(err as Error).message}`);
  process.exitCode = 2;
}
