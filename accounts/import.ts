// CSV import of accounts: stream the file, validate every row, COPY the good ones into a staging
// table, reject duplicates and rows already in the database in SQL, insert the rest into
// `accounts`, all in ONE transaction: an import either lands whole or not at all.
// Nothing here logs or reports a customer's value; see validate-row.ts for what is rejected.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type pg from 'pg';
import type { Db } from '../db/pool';
import { createImportStaging } from '../db/sql/import-staging';
import { copyIntoImportStaging } from '../db/sql/copy-import-staging';
import { dropStagedLines, findImportConflicts } from '../db/sql/find-import-conflicts';
import { insertStagedAccounts } from '../db/sql/insert-staged-accounts';
import { hashPin, type PinVerifier, type ScryptParams } from '../domain/pin';
import { CsvFileError, readCsvRecords, type CsvRecord } from './csv-reader';
import { EXPECTED_HEADER, parseHeader, type ColumnMap } from './csv-columns';
import { encodeStagingRow } from './copy-text';
import { ErrorReport } from './error-report';
import type { Pepper } from './pepper';
import { validateRow, type AccountRow, type Problem } from './validate-row';

export interface ImportOptions {
  file: string;
  /** Problem report path; default `<file>.errors.csv`. */
  errorsPath?: string;
  /** Any rejected row aborts the import: nothing is imported. */
  strict?: boolean;
  /** Hash the optional `pin` column (needs `pepper`); false ignores the column. Default true. */
  pins?: boolean;
  pepper?: Pepper;
  /** Cheaper scrypt parameters, for tests only. */
  pinParams?: ScryptParams;
}

export interface ImportResult {
  /** Data records read (the header and blank lines excluded). */
  read: number;
  imported: number;
  /** Rows rejected (each has one or more `rejected` lines in the report). */
  rejected: number;
  /** Contact problems on accepted rows (the row is imported with the field empty). */
  warnings: number;
  rejectedByField: Record<string, number>;
  warningsByField: Record<string, number>;
  /** True when --strict refused the import because of rejected rows. */
  aborted: boolean;
  errorsPath: string;
  durationMs: number;
}

/** The file as a whole cannot be imported; nothing was. */
export class ImportFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportFileError';
  }
}

const COPY_CHUNK_CHARS = 64 * 1024;

export async function importAccounts(db: Db, opts: ImportOptions): Promise<ImportResult> {
  const started = Date.now();
  await checkReadable(opts.file);
  const records = readCsvRecords(createReadStream(opts.file, { highWaterMark: 256 * 1024 }))[Symbol.asyncIterator]();
  try {
    const columns = await readHeader(records);
    const pins = opts.pins !== false && columns.pin !== undefined;
    if (pins && !opts.pepper) {
      throw new ImportFileError(
        'the file has a pin column: set PIN_PEPPER to hash it, or ignore the column (--ignore-pins)',
      );
    }
    const errorsPath = opts.errorsPath ?? `${opts.file}.errors.csv`;
    const tally = new Tally();
    const client = await db.connect();
    let report: ErrorReport | undefined;
    let released = false;
    try {
      report = await ErrorReport.create(errorsPath);
      await client.query('BEGIN');
      await createImportStaging(client);
      await copyIntoImportStaging(client, stagingText(records, columns, pins, opts, report, tally));
      if (tally.read === 0) throw new ImportFileError('the file has a header but no data rows');
      await rejectConflicts(client, report, tally);
      const { inserted, lost } = await insertStagedAccounts(client);
      for (const r of lost)
        await tally.reject(report, r.line, r.id, [
          { field: 'id', reason: 'already exists in the database (inserted concurrently)' },
        ]);
      const aborted = Boolean(opts.strict) && tally.rejected > 0;
      // The report is complete before the outcome is decided: it is true either way.
      await report.finish();
      await client.query(aborted ? 'ROLLBACK' : 'COMMIT');
      return {
        read: tally.read,
        imported: aborted ? 0 : inserted,
        rejected: tally.rejected,
        warnings: tally.warnings,
        rejectedByField: tally.rejectedByField,
        warningsByField: tally.warningsByField,
        aborted,
        errorsPath,
        durationMs: Date.now() - started,
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      await report?.abandon();
      // A COPY cut short can leave the connection in an unknown state: do not return it to the pool.
      client.release(err as Error);
      released = true;
      throw err instanceof CsvFileError ? new ImportFileError(err.message) : err;
    } finally {
      if (!released) client.release();
    }
  } catch (err) {
    throw err instanceof CsvFileError ? new ImportFileError(err.message) : err;
  } finally {
    await records.return?.(undefined);
  }
}

async function checkReadable(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ImportFileError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'error')}`);
  }
  if (!info.isFile()) throw new ImportFileError(`cannot read ${file}: not a regular file`);
  if (info.size === 0) throw new ImportFileError(`${file} is empty (expected a header row: ${EXPECTED_HEADER})`);
}

async function readHeader(records: AsyncIterator<CsvRecord>): Promise<ColumnMap> {
  const first = await records.next();
  if (first.done) throw new ImportFileError(`the file is empty (expected a header row: ${EXPECTED_HEADER})`);
  if (first.value.malformed) throw new ImportFileError(`header: ${first.value.malformed}`);
  const header = parseHeader(first.value.fields);
  if ('problems' in header) {
    throw new ImportFileError(
      `header (line ${first.value.line}): ${header.problems.join('; ')}. Expected columns: ${EXPECTED_HEADER} (pin optional)`,
    );
  }
  return header.columns;
}

/** Validates each record and yields COPY text in chunks; problems go to the report as it goes. */
async function* stagingText(
  records: AsyncIterator<CsvRecord>,
  columns: ColumnMap,
  pins: boolean,
  opts: ImportOptions,
  report: ErrorReport,
  tally: Tally,
): AsyncGenerator<string> {
  const hasher = pins ? new PinHasher(opts.pepper!, opts.pinParams) : undefined;
  let chunk = '';
  for (let r = await records.next(); !r.done; r = await records.next()) {
    const rec = r.value;
    tally.read++;
    if (rec.malformed) {
      await tally.reject(report, rec.line, undefined, [{ field: 'row', reason: rec.malformed }]);
      continue;
    }
    const outcome = validateRow(rec.fields, columns, rec.line, { pins });
    if (!outcome.ok) {
      await tally.reject(report, rec.line, outcome.id, outcome.errors);
      continue;
    }
    if (outcome.warnings.length) await tally.warn(report, rec.line, outcome.row.id, outcome.warnings);
    if (hasher && outcome.row.pin !== null) {
      // Hashing is slow (memory-hard on purpose): run a few at once, off the event loop.
      for (const text of await hasher.add(outcome.row)) chunk += text;
    } else chunk += encodeStagingRow(outcome.row, null);
    if (chunk.length >= COPY_CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (hasher) for (const text of await hasher.drain()) chunk += text;
  if (chunk) yield chunk;
}

/** Hashes PINs with bounded concurrency; rows come back in completion order (staging keeps the line). */
class PinHasher {
  private readonly inflight = new Set<Promise<void>>();
  private ready: string[] = [];
  private readonly limit = Math.max(1, availableParallelism());
  constructor(
    private readonly pepper: Pepper,
    private readonly params?: ScryptParams,
  ) {}

  async add(row: AccountRow): Promise<string[]> {
    const pin = row.pin!;
    const job = hashPin(pin, this.pepper.key, this.pepper.id, { params: this.params }).then((v: PinVerifier) => {
      this.ready.push(encodeStagingRow(row, v));
    });
    const tracked = job.finally(() => this.inflight.delete(tracked));
    tracked.catch(() => undefined); // observed by race/all below; this only stops an unhandled-rejection crash
    this.inflight.add(tracked);
    while (this.inflight.size >= this.limit) await Promise.race(this.inflight);
    return this.take();
  }

  async drain(): Promise<string[]> {
    await Promise.all(this.inflight);
    return this.take();
  }

  private take(): string[] {
    const out = this.ready;
    this.ready = [];
    return out;
  }
}

async function rejectConflicts(client: pg.ClientBase, report: ErrorReport, tally: Tally): Promise<void> {
  const conflicts = await findImportConflicts(client);
  const byLine = new Map<number, { id: number; problems: Problem[] }>();
  for (const c of conflicts) {
    const entry = byLine.get(c.line) ?? { id: c.id, problems: [] };
    entry.problems.push({ field: c.field, reason: c.reason });
    byLine.set(c.line, entry);
  }
  for (const [line, e] of byLine) await tally.reject(report, line, e.id, e.problems);
  await dropStagedLines(client, [...byLine.keys()]);
}

class Tally {
  read = 0;
  rejected = 0;
  warnings = 0;
  rejectedByField: Record<string, number> = {};
  warningsByField: Record<string, number> = {};

  async reject(report: ErrorReport, line: number, id: number | undefined, problems: Problem[]): Promise<void> {
    this.rejected++;
    for (const p of problems) this.rejectedByField[p.field] = (this.rejectedByField[p.field] ?? 0) + 1;
    await report.add(line, id, 'rejected', problems);
  }

  async warn(report: ErrorReport, line: number, id: number, problems: Problem[]): Promise<void> {
    this.warnings += problems.length;
    for (const p of problems) this.warningsByField[p.field] = (this.warningsByField[p.field] ?? 0) + 1;
    await report.add(line, id, 'warning', problems);
  }
}
