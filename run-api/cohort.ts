// An explicit cohort (a cohort file) checked against the database: distinct ids, and which of
// them are not in `accounts`. Unknown ids are refused unless the operator allows them; allowed,
// they go into the ledger and the reset step skips them with reason account_deleted.
import type { Db } from '../db/pool';
import { findUnknownAccounts } from '../db/sql/find-unknown-accounts';
import { UsageError } from './errors';
import { distinctSorted, linesOf, listLines, readCohortFile, type CohortFile } from './cohort-file';

export interface FileCohort {
  file: CohortFile;
  /** Distinct ids, ascending. */
  ids: number[];
  duplicates: number;
  unknownIds: number[];
}

export const ID_PAGE = 10_000;

export async function unknownIds(db: Db, sortedIds: number[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < sortedIds.length; i += ID_PAGE)
    out.push(...(await findUnknownAccounts(db, sortedIds.slice(i, i + ID_PAGE))));
  return out;
}

export async function loadFileCohort(db: Db, path: string): Promise<FileCohort> {
  const file = await readCohortFile(path);
  const { ids, duplicates } = distinctSorted(file.ids);
  return { file, ids, duplicates, unknownIds: await unknownIds(db, ids) };
}

/** Where the unknown ids are, by line number (no ids, no other data from the file). */
export function unknownSummary(c: Pick<FileCohort, 'file' | 'unknownIds'>): string {
  return describeUnknown(c.unknownIds.length, linesOf(c.file, new Set(c.unknownIds)));
}

export function describeUnknown(count: number, firstLines: number[]): string {
  return `${count} account id(s) not in the accounts table: line ${listLines(firstLines, count)}`;
}

/** The refusal of a cohort file with unknown ids (exit 2), unless --allow-unknown. */
export function unknownRefusal(fileName: string, count: number, firstLines: number[]): UsageError {
  return new UsageError(
    `cohort file ${fileName}: ${describeUnknown(count, firstLines)}; fix the file, or pass --allow-unknown to record them and skip them (account_deleted)`,
  );
}

export function refuseUnknown(c: Pick<FileCohort, 'file' | 'unknownIds'>, allowUnknown: boolean): void {
  if (c.unknownIds.length === 0 || allowUnknown) return;
  throw unknownRefusal(c.file.file, c.unknownIds.length, linesOf(c.file, new Set(c.unknownIds)));
}
