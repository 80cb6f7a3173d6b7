// Reads a cohort file: one account id per line, or a CSV whose header has an `id` or `account_id`
// column (an accounts export, a forensic extract). Streamed record by record; only the ids and
// their line numbers are kept. Problems name line numbers, never a value from the file.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { CsvFileError, readCsvRecords, type CsvRecord } from '../accounts/csv-reader';
import { UsageError } from './errors';

export interface CohortFile {
  file: string;
  /** Account ids in file order, with the line each is on (parallel arrays). */
  ids: number[];
  lines: number[];
  /** Whether the file had a header row (CSV). */
  header: boolean;
}

const ID_COLUMNS = ['account_id', 'id'];
const MAX_LISTED = 10;
const ID = /^\d{1,16}$/;

function listLines(lines: number[], total: number): string {
  return `${lines.slice(0, MAX_LISTED).join(', ')}${total > MAX_LISTED ? ` and ${total - MAX_LISTED} more` : ''}`;
}

/** Pure: turns CSV records into ids; throws UsageError naming the offending lines. */
export class CohortParser {
  private column: number | undefined;
  private seenFirst = false;
  private readonly badLines: number[] = [];
  private badCount = 0;
  readonly ids: number[] = [];
  readonly lines: number[] = [];
  header = false;

  constructor(private readonly file: string) {}

  push(rec: CsvRecord): void {
    if (!this.seenFirst) {
      this.seenFirst = true;
      const only = rec.fields.length === 1 ? rec.fields[0].trim() : undefined;
      if (only !== undefined && (ID.test(only) || only.startsWith('#'))) {
        this.column = 0;
      } else {
        const names = rec.fields.map((f) => f.trim().toLowerCase());
        const found = ID_COLUMNS.filter((c) => names.includes(c));
        if (found.length === 0 || rec.malformed) {
          throw new UsageError(
            `cohort file ${this.file}: line ${rec.line} is neither an account id nor a CSV header with an id or account_id column`,
          );
        }
        if (found.length > 1)
          throw new UsageError(`cohort file ${this.file}: the header has both id and account_id columns; keep one`);
        this.column = names.indexOf(found[0]);
        this.header = true;
        return;
      }
    }
    const raw = rec.fields[this.column!]?.trim() ?? '';
    if (this.column === 0 && rec.fields.length === 1 && raw.startsWith('#')) return; // a comment line
    const n = Number(raw);
    if (rec.malformed || !ID.test(raw) || n < 1 || !Number.isSafeInteger(n)) {
      this.badCount++;
      if (this.badLines.length < MAX_LISTED) this.badLines.push(rec.line);
      return;
    }
    this.ids.push(n);
    this.lines.push(rec.line);
  }

  finish(): CohortFile {
    if (this.badCount > 0) {
      throw new UsageError(
        `cohort file ${this.file}: ${this.badCount} line(s) do not hold a positive integer account id: line ${listLines(this.badLines, this.badCount)}`,
      );
    }
    if (this.ids.length === 0) throw new UsageError(`cohort file ${this.file} holds no account ids`);
    return { file: this.file, ids: this.ids, lines: this.lines, header: this.header };
  }
}

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  EPERM: 'permission denied',
};

export async function readCohortFile(file: string): Promise<CohortFile> {
  // Open first: an unreadable file is a clear usage error, not a stream failure halfway.
  try {
    const fh = await open(file, 'r');
    const st = await fh.stat();
    await fh.close();
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new UsageError(`cannot read cohort file ${file}: ${FILE_ERRORS[code] ?? (code || 'unreadable')}`);
  }
  const parser = new CohortParser(file);
  try {
    for await (const rec of readCsvRecords(createReadStream(file))) parser.push(rec);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (err instanceof CsvFileError || err instanceof TypeError)
      throw new UsageError(`cannot read cohort file ${file}: ${(err as Error).message}`);
    throw new UsageError(
      `cannot read cohort file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parser.finish();
}

/** Distinct ids in ascending order, and how many repeats the file had. */
export function distinctSorted(ids: number[]): { ids: number[]; duplicates: number } {
  const sorted = Float64Array.from(ids).sort();
  const out: number[] = [];
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) out.push(sorted[i]);
  return { ids: out, duplicates: ids.length - out.length };
}

/** The first line numbers (file order) holding one of `wanted`, for messages. */
export function linesOf(file: CohortFile, wanted: Set<number>, max = MAX_LISTED): number[] {
  const out: number[] = [];
  for (let i = 0; i < file.ids.length && out.length < max; i++) if (wanted.has(file.ids[i])) out.push(file.lines[i]);
  return out;
}

export { listLines };
