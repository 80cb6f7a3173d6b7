// `plan` / `start --dry-run`: what a run would do, changing nothing. Streams the cohort's contact
// data by keyset pages (one page in memory at a time), chooses each account's channel with the
// same chooseChannel the notify step uses, and times the scan.
import type { Db } from '../db/pool';
import { readActiveContactsPage, type ContactRow } from '../db/sql/read-active-contacts';
import { readContactsByIds } from '../db/sql/read-contacts-by-ids';
import { chooseChannel } from '../domain/channel';
import { estimatePlan } from '../domain/plan';
import type { ChannelPolicy } from '../domain/types';
import type { CohortFile } from './cohort-file';
import { rateToNumber, type Rate } from '../domain/run';
import { linesOf } from './cohort-file';

export type PlanCohortSource =
  { kind: 'all_active' } | { kind: 'file'; file: CohortFile; ids: number[]; duplicates: number };

export interface PlanOptions {
  policy: ChannelPolicy;
  batchSize: number;
  canary: number;
  ratePerSecond: Rate;
  pageSize?: number;
}

export interface CohortPlan {
  cohort: {
    kind: 'all_active' | 'file';
    file?: string;
    accounts: number;
    duplicates: number;
    unknown: number;
    unknownLines: number[];
  };
  /** PINs the run would invalidate. */
  resets: number;
  /** Not reset: closed or deleted accounts, ids not in the accounts table. */
  skipped: { closed: number; deleted: number; unknown: number };
  /** Over the accounts to reset: first channel each would get (SMS failures may still fall back to email). */
  channels: { sms: number; email: number; unreachable: number; unreachableByReason: Record<string, number> };
  params: { policy: ChannelPolicy; batchSize: number; canary: number; ratePerSecond: Rate };
  batches: number;
  canaryAccounts: number;
  messages: number;
  /** Seconds to send every message at the rate; absent when the rate is unlimited. */
  notifySeconds?: number;
  scan: {
    accounts: number;
    pages: number;
    pageSize: number;
    ms: number;
    dbMs: number;
    perSecond: number;
    peakRssMb: number;
  };
}

export const PLAN_PAGE = 10_000;

export async function planCohort(db: Db, source: PlanCohortSource, opts: PlanOptions): Promise<CohortPlan> {
  const pageSize = opts.pageSize ?? PLAN_PAGE;
  const started = performance.now();
  let peakRss = process.memoryUsage().rss;
  const skipped = { closed: 0, deleted: 0, unknown: 0 };
  const channels = { sms: 0, email: 0, unreachable: 0, unreachableByReason: {} as Record<string, number> };
  const unknownIds: number[] = [];
  let accounts = 0;
  let scanned = 0;
  let pages = 0;
  let dbMs = 0;
  const timed = async <T>(q: Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await q;
    } finally {
      dbMs += performance.now() - t0;
    }
  };

  const tally = (rows: ContactRow[]) => {
    for (const c of rows) {
      scanned++;
      if (c.status === 'closed' || c.status === 'deleted') {
        skipped[c.status]++;
        continue;
      }
      const choice = chooseChannel(c, opts.policy);
      if ('channel' in choice) channels[choice.channel]++;
      else {
        channels.unreachable++;
        channels.unreachableByReason[choice.unreachable] = (channels.unreachableByReason[choice.unreachable] ?? 0) + 1;
      }
    }
    pages++;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };

  if (source.kind === 'all_active') {
    for (let after = 0; Number.isFinite(after);) {
      const { rows, windowEnd } = await timed(readActiveContactsPage(db, after, pageSize));
      if (rows.length) tally(rows);
      accounts += rows.length;
      after = windowEnd;
    }
  } else {
    accounts = source.ids.length;
    for (let i = 0; i < source.ids.length; i += pageSize) {
      const page = source.ids.slice(i, i + pageSize);
      const rows = await timed(readContactsByIds(db, page));
      if (rows.length < page.length) {
        const found = new Set(rows.map((r) => r.id));
        for (const id of page) if (!found.has(id)) unknownIds.push(id);
      }
      tally(rows);
    }
    skipped.unknown = unknownIds.length;
  }

  const ms = performance.now() - started;
  const resets = accounts - skipped.closed - skipped.deleted - skipped.unknown;
  const messages = channels.sms + channels.email;
  const estimate = estimatePlan({
    cohort: accounts,
    messages,
    batchSize: opts.batchSize,
    canary: opts.canary,
    ratePerSecond: rateToNumber(opts.ratePerSecond),
  });
  return {
    cohort: {
      kind: source.kind,
      file: source.kind === 'file' ? source.file.file : undefined,
      accounts,
      duplicates: source.kind === 'file' ? source.duplicates : 0,
      unknown: unknownIds.length,
      unknownLines: source.kind === 'file' && unknownIds.length ? linesOf(source.file, new Set(unknownIds)) : [],
    },
    resets,
    skipped,
    channels,
    params: { policy: opts.policy, batchSize: opts.batchSize, canary: opts.canary, ratePerSecond: opts.ratePerSecond },
    batches: estimate.batches,
    canaryAccounts: estimate.canaryAccounts,
    messages,
    notifySeconds: estimate.notifySeconds,
    scan: {
      accounts: scanned,
      pages,
      pageSize,
      ms: Math.round(ms),
      dbMs: Math.round(dbMs),
      perSecond: Math.round(scanned / Math.max(ms / 1000, 0.001)),
      peakRssMb: Math.round(peakRss / 2 ** 20),
    },
  };
}
