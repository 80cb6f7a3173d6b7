// Pure helpers behind `pinreset` (cli/main.ts): the plan estimate, cohort-file parsing, report
// lines, rate and ETA. No servers involved.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchCount, estimatePlan, formatDuration } from '../domain/plan';
import { CohortParser, distinctSorted, linesOf, readCohortFile } from '../run-api/cohort-file';
import { UsageError } from '../run-api/errors';
import { csvLine, jsonLine } from '../run-api/report';
import { etaSeconds, RateTracker } from '../domain/progress-rate';
import type { ReportRow } from '../db/sql/read-report-page';

describe('plan estimate (domain/plan.ts)', () => {
  it('counts batches like the workflow plans them, canary first', () => {
    expect(batchCount(0, 1000)).toBe(0);
    expect(batchCount(1, 1000)).toBe(1);
    expect(batchCount(1000, 1000)).toBe(1);
    expect(batchCount(1001, 1000)).toBe(2);
    expect(batchCount(850_000, 1000)).toBe(850);
    // A canary of 100 is one batch, then the other 849,900 in batches of 1,000.
    expect(batchCount(850_000, 1000, 100)).toBe(851);
    // A canary larger than the cohort is the whole cohort.
    expect(batchCount(50, 1000, 100)).toBe(1);
  });

  it('estimates the notification time at the rate, none when unlimited', () => {
    expect(
      estimatePlan({ cohort: 850_000, messages: 835_000, batchSize: 1000, canary: 0, ratePerSecond: 100 }),
    ).toEqual({
      batches: 850,
      canaryAccounts: 0,
      notifySeconds: 8350,
    });
    expect(estimatePlan({ cohort: 60, messages: 55, batchSize: 7, canary: 10, ratePerSecond: 0 })).toEqual({
      batches: 1 + Math.ceil(50 / 7),
      canaryAccounts: 10,
      notifySeconds: undefined,
    });
    expect(() => estimatePlan({ cohort: 1, messages: 1, batchSize: 0, canary: 0, ratePerSecond: 1 })).toThrow(
      /batchSize/,
    );
    expect(() => estimatePlan({ cohort: 1, messages: 1, batchSize: 1, canary: 0, ratePerSecond: -1 })).toThrow(
      /ratePerSecond/,
    );
  });

  it('formats durations for people', () => {
    expect(formatDuration(8350)).toBe('2h 19m 10s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(4.24)).toBe('4.2s');
    expect(formatDuration(0.35)).toBe('350 ms');
    expect(formatDuration(-1)).toBe('unknown');
  });
});

function parse(file: string, lines: string[][]) {
  const p = new CohortParser(file);
  lines.forEach((fields, i) => p.push({ line: i + 1, fields }));
  return p.finish();
}

describe('cohort file parsing', () => {
  it('reads one id per line, with comments', () => {
    const c = parse('f', [['# forensic extract 2021-08-16'], ['17'], [' 42 '], ['17']]);
    expect(c).toMatchObject({ ids: [17, 42, 17], lines: [2, 3, 4], header: false });
  });

  it('reads the id or account_id column of a CSV', () => {
    expect(
      parse('f', [
        ['Account_ID', 'note'],
        ['5', 'x'],
        ['6', ''],
      ]),
    ).toMatchObject({ ids: [5, 6], lines: [2, 3], header: true });
    expect(
      parse('f', [
        ['id', 'account_number', 'full_name'],
        ['9', '0009', 'A B'],
      ]).ids,
    ).toEqual([9]);
  });

  it('names the lines that hold no positive integer, never their contents', () => {
    const err = (() => {
      try {
        parse('ids.txt', [['1'], ['0'], ['-4'], ['5.5'], ['+15551234567x'], ['2'], ['99999999999999999']]);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect(err!.message).toBe(
      'cohort file ids.txt: 5 line(s) do not hold a positive integer account id: line 2, 3, 4, 5, 7',
    );
    expect(err!.message).not.toMatch(/1555/);
  });

  it('refuses a file with no id column, both id columns, or no ids', () => {
    expect(() =>
      parse('f', [
        ['name', 'phone'],
        ['a', 'b'],
      ]),
    ).toThrow(/line 1 is neither an account id nor a CSV header/);
    expect(() =>
      parse('f', [
        ['id', 'account_id'],
        ['1', '2'],
      ]),
    ).toThrow(/both id and account_id/);
    expect(() => parse('f', [['account_id']])).toThrow(/holds no account ids/);
  });

  it('reads files, and says clearly when it cannot', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cohort-'));
    const file = path.join(dir, 'c.csv');
    await writeFile(file, '\ufeffaccount_id,reason\r\n3,"seen in dump, twice"\r\n\r\n1\r\n3\r\n');
    const c = await readCohortFile(file);
    expect(c).toMatchObject({ ids: [3, 1, 3], lines: [2, 4, 5] });
    expect(distinctSorted(c.ids)).toEqual({ ids: [1, 3], duplicates: 1 });
    expect(linesOf(c, new Set([3]))).toEqual([2, 5]);
    await expect(readCohortFile(path.join(dir, 'missing.txt'))).rejects.toThrow(
      /cannot read cohort file .*missing\.txt: no such file/,
    );
    await expect(readCohortFile(dir)).rejects.toThrow(/is a directory/);
  });
});

describe('report lines', () => {
  const row: ReportRow = {
    accountId: 7,
    outcome: 'sent',
    channel: 'email',
    fellBack: true,
    providerMessageId: '<pinreset.r.7@x.example>',
    errorCode: '21211',
    resetAt: new Date('2021-08-16T10:00:00Z'),
    notifiedAt: new Date('2021-08-16T10:05:00Z'),
    attempts: 2,
    resolvedBy: null,
    deliveryState: 'undelivered',
    deliveryCode: '30005',
    deliveryAt: new Date('2021-08-16T10:04:00Z'),
    deliveryAction: 'fallback_email',
  };
  it('CSV quotes only what needs it', () => {
    expect(csvLine(row)).toBe(
      '7,sent,email,true,<pinreset.r.7@x.example>,21211,2021-08-16T10:00:00.000Z,2021-08-16T10:05:00.000Z,2,,undelivered,30005,2021-08-16T10:04:00.000Z,fallback_email',
    );
    expect(csvLine({ ...row, errorCode: 'a,"b"', notifiedAt: null })).toBe(
      '7,sent,email,true,<pinreset.r.7@x.example>,"a,""b""",2021-08-16T10:00:00.000Z,,2,,undelivered,30005,2021-08-16T10:04:00.000Z,fallback_email',
    );
  });
  it('JSON Lines carry exactly the report columns', () => {
    expect(Object.keys(JSON.parse(jsonLine(row)))).toEqual([
      'account_id',
      'outcome',
      'channel',
      'fell_back',
      'provider_message_id',
      'error_code',
      'reset_at',
      'notified_at',
      'attempts',
      'resolved_by',
      'delivery_state',
      'delivery_code',
      'delivery_at',
      'delivery_action',
    ]);
  });
});

describe('rate and ETA', () => {
  it('measures the current rate over a sliding window of samples', () => {
    const r = new RateTracker(10_000);
    r.add(0, 0);
    expect(r.rate()).toBeUndefined();
    r.add(2_000, 100);
    expect(r.rate()).toBe(50);
    r.add(12_000, 300);
    r.add(14_000, 400);
    // The sample at 0 fell out; the window still reaches back just past 10 s: (400 - 100) / 12 s.
    expect(r.rate()).toBe(25);
    r.add(15_000, 10); // counts went back (continue-as-new, older checkpoint): start afresh
    expect(r.rate()).toBeUndefined();
  });
  it('gives no ETA while paused or not moving', () => {
    expect(etaSeconds(0, undefined, true)).toBe(0);
    expect(etaSeconds(100, 10, false)).toBe(10);
    expect(etaSeconds(100, 10, true)).toBeUndefined();
    expect(etaSeconds(100, 0, false)).toBeUndefined();
  });
});
