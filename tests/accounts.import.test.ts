import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { importAccounts, ImportFileError, type ImportOptions } from '../accounts/import';
import { verifyPin } from '../domain/pin';
import { createImportStaging } from '../db/sql/import-staging';
import { copyIntoImportStaging } from '../db/sql/copy-import-staging';
import { insertStagedAccounts } from '../db/sql/insert-staged-accounts';
import { encodeStagingRow } from '../accounts/copy-text';
import type { AccountRow } from '../accounts/validate-row';
import { accountsTestDb, type TestDb } from './support/accounts-pg';

const HEADER = 'id,account_number,full_name,phone,phone_type,email,plan,status,sms_opt_out,email_opt_out';
const FAST_PIN = { N: 1024, r: 8, p: 1 };

let t: TestDb;
let dir: string;
let n = 0;

beforeAll(async () => {
  t = await accountsTestDb('accounts-import');
  dir = await mkdtemp(path.join(tmpdir(), 'pinreset-import-'));
});
afterAll(async () => {
  await t?.stop();
});
beforeEach(async () => {
  await t.db.query('TRUNCATE accounts');
});

async function csvFile(text: string | Buffer): Promise<string> {
  const file = path.join(dir, `f${++n}.csv`);
  await writeFile(file, text);
  return file;
}

const run = (file: string, opts: Partial<ImportOptions> = {}) => importAccounts(t.db, { file, ...opts });

async function rows(): Promise<Record<string, unknown>[]> {
  return (await t.db.query('SELECT * FROM accounts ORDER BY id')).rows;
}

async function report(
  file: string,
): Promise<{ line: number; id: string; severity: string; field: string; reason: string }[]> {
  const text = await readFile(`${file}.errors.csv`, 'utf8');
  const [header, ...lines] = text.trimEnd().split('\n');
  expect(header).toBe('line,id,severity,field,reason');
  return lines.map((l) => {
    const m = /^(\d+),(\d*),(rejected|warning),([a-z_]+),(.*)$/.exec(l);
    if (!m) throw new Error(`bad report line ${l}`);
    return {
      line: Number(m[1]),
      id: m[2],
      severity: m[3],
      field: m[4],
      reason: m[5].replace(/^"|"$/g, '').replace(/""/g, '"'),
    };
  });
}

describe('import: good files', () => {
  it('imports every row with normalized fields', async () => {
    const file = await csvFile(
      [
        HEADER,
        '1,AC-0001,Jane Doe,+1 (212) 555-0123,mobile,jane+prepaid@example.com,prepaid-basic,active,false,false',
        '2,AC-0002,José Núñez,212.555.0124,LANDLINE,josé@bücher.example,,Suspended,yes,no',
        '3,AC-0003,王芳,0044 20 7946 0958,voip,user@例え.テスト,payg,closed,1,0',
        "4,AC-0004,Ann O'Neil,,,,prepaid,deleted,,",
        ' 5 , AC-0005 ,  Bob  ,2125550125,, Bob@Example.COM ,prepaid,active,TRUE,t',
      ].join('\n') + '\n',
    );
    const r = await run(file);
    expect(r).toMatchObject({ read: 5, imported: 5, rejected: 0, warnings: 0, aborted: false });
    const got = await rows();
    expect(
      got.map((a) => [
        a.id,
        a.account_number,
        a.full_name,
        a.phone,
        a.phone_type,
        a.email,
        a.plan,
        a.status,
        a.sms_opt_out,
        a.email_opt_out,
      ]),
    ).toEqual([
      [
        1,
        'AC-0001',
        'Jane Doe',
        '+12125550123',
        'mobile',
        'jane+prepaid@example.com',
        'prepaid-basic',
        'active',
        false,
        false,
      ],
      [
        2,
        'AC-0002',
        'José Núñez',
        '+12125550124',
        'landline',
        'josé@bücher.example',
        'prepaid',
        'suspended',
        true,
        false,
      ],
      [3, 'AC-0003', '王芳', '+442079460958', 'voip', 'user@例え.テスト', 'payg', 'closed', true, false],
      [4, 'AC-0004', "Ann O'Neil", null, null, null, 'prepaid', 'deleted', false, false],
      [5, 'AC-0005', 'Bob', '+12125550125', 'unknown', 'Bob@example.com', 'prepaid', 'active', true, true],
    ]);
    expect(got.every((a) => a.pin_hash === null && a.pin_status === 'set' && a.credential_version === 1)).toBe(true);
    expect(await report(file)).toEqual([]);
  });

  it('reads RFC 4180 quoting: commas, doubled quotes and newlines inside fields, CRLF, BOM', async () => {
    const file = await csvFile(
      '\uFEFF' +
        [
          HEADER,
          '1,"AC,1","Doe, Jane ""JJ""",+12125550123,mobile,,"plan, with comma",active,false,false',
          '2,AC-2,"Line one\r\nLine two",,,,"multi\nline plan",active,false,false',
          '3,AC-3,"Tab\there",,,,prepaid,active,false,false',
          '4,,missing account number,,,,prepaid,active,false,false',
          '"5","AC-5","Quoted, everything","212-555-0199","mobile","a@example.com","prepaid","active","false","false"',
        ].join('\r\n') +
        '\r\n',
    );
    const r = await run(file);
    expect(r).toMatchObject({ read: 5, imported: 4, rejected: 1 });
    const got = await rows();
    expect(got.map((a) => [a.account_number, a.full_name, a.plan])).toEqual([
      ['AC,1', 'Doe, Jane "JJ"', 'plan, with comma'],
      ['AC-2', 'Line one\r\nLine two', 'multi\nline plan'],
      ['AC-3', 'Tab\there', 'prepaid'],
      ['AC-5', 'Quoted, everything', 'prepaid'],
    ]);
    // Record 2 spans lines 3-5 (two embedded newlines), so the bad record starts on line 7.
    expect(await report(file)).toEqual([
      { line: 7, id: '4', severity: 'rejected', field: 'account_number', reason: 'missing' },
    ]);
  });

  it('accepts any unicode name up to 200 characters; keeps accounts with an empty or longer name, flagged', async () => {
    const long200 = 'Ä'.repeat(199) + '👩';
    const file = await csvFile(
      [
        HEADER,
        '1,A1,Zoë Ødegård-Łukasiewicz,,,,,active,,',
        '2,A2,김민준,,,,,active,,',
        "3,A3,D'Angelo O'Brien,,,,,active,,",
        '4,A4,👩‍👩‍👧 Family Account,,,,,active,,',
        `5,A5,${long200},,,,,active,,`,
        `6,A6,${long200}x,,,,,active,,`,
        '7,A7,,,,,,active,,',
        '8,A8,"   ",,,,,active,,',
        '9,A9,مريم الحسيني,,,,,active,,',
      ].join('\n'),
    );
    const r = await run(file);
    // The PIN of every one of them must be reset: none is dropped.
    expect(r).toMatchObject({ read: 9, imported: 9, rejected: 0 });
    expect((await rows()).map((a) => a.full_name)).toEqual([
      'Zoë Ødegård-Łukasiewicz',
      '김민준',
      "D'Angelo O'Brien",
      '👩‍👩‍👧 Family Account',
      long200,
      long200,
      '',
      '',
      'مريم الحسيني',
    ]);
    expect((await report(file)).map((p) => [p.line, p.severity, p.field, p.reason])).toEqual([
      [7, 'warning', 'full_name', 'longer than 200 characters; stored cut to 200'],
      [8, 'warning', 'full_name', 'missing; stored empty'],
      [9, 'warning', 'full_name', 'missing; stored empty'],
    ]);
  });

  it('keeps plus-tagged and internationalized emails; stores an invalid contact as NULL with a warning', async () => {
    const file = await csvFile(
      [
        HEADER,
        '1,A1,Plus Tag,,,first.last+carrier+2021@example.com,,active,,',
        '2,A2,IDN,,,kunde@münchen.example,,active,,',
        '3,A3,Cyrillic,,,user@пример.испытание,,active,,',
        '4,A4,Punycode,,,user@xn--bcher-kva.example,,active,,',
        '5,A5,Bad Email,,,double..dot@example.com,,active,,',
        '6,A6,Bad Phone,555-0123,mobile,ok@example.com,,active,,',
        '7,A7,Bad Type,+12125550123,pager,,,active,,',
        '8,A8,Letters,CALL-ME-NOW,mobile,,,active,,',
      ].join('\n'),
    );
    const r = await run(file);
    expect(r).toMatchObject({
      read: 8,
      imported: 8,
      rejected: 0,
      warnings: 4,
      warningsByField: { email: 1, phone: 2, phone_type: 1 },
    });
    expect((await rows()).map((a) => [a.id, a.phone, a.phone_type, a.email])).toEqual([
      [1, null, null, 'first.last+carrier+2021@example.com'],
      [2, null, null, 'kunde@münchen.example'],
      [3, null, null, 'user@пример.испытание'],
      [4, null, null, 'user@xn--bcher-kva.example'],
      [5, null, null, null],
      [6, null, null, 'ok@example.com'],
      [7, '+12125550123', 'unknown', null],
      [8, null, null, null],
    ]);
    expect(await report(file)).toEqual([
      {
        line: 6,
        id: '5',
        severity: 'warning',
        field: 'email',
        reason: 'not a valid email address (misplaced or double dot); stored empty',
      },
      {
        line: 7,
        id: '6',
        severity: 'warning',
        field: 'phone',
        reason: 'not a valid phone number (too short); stored empty',
      },
      {
        line: 8,
        id: '7',
        severity: 'warning',
        field: 'phone_type',
        reason: 'not one of mobile, landline, voip, unknown; stored as unknown',
      },
      {
        line: 9,
        id: '8',
        severity: 'warning',
        field: 'phone',
        reason: 'not a valid phone number (contains letters); stored empty',
      },
    ]);
  });
});

describe('import: bad rows', () => {
  const SECRET = ['Xavier Quux', '+12125550777', '2125550777', 'xavier.quux', 'PIN-ACC-777', '7777'];

  it('imports the good rows and reports each bad one by line and reason, without customer values', async () => {
    const file = await csvFile(
      [
        HEADER, // line 1
        '1,A1,Good One,+12125550101,mobile,one@example.com,,active,,', // 2
        'x1,PIN-ACC-777,Xavier Quux,2125550777,mobile,xavier.quux@example.com,,active,,', // 3 bad id
        '0,A3,Zero Id,,,,,active,,', // 4 bad id
        '4,A4,Bad Status,,,,,frozen,,', // 5 bad status
        '5,A5,Bad Flag,,,,,active,maybe,', // 6 bad boolean
        '6,A6,Too Few,+12125550777', // 7 wrong column count
        '7,A7,Too,Many,,,,,active,,,', // 8 wrong column count
        '8,A8,"Xavier Quux" and more,,,,,active,,', // 9 malformed quoting
        '', // 10 blank: skipped
        '9,A9,Good Two,,,,,active,,', // 11
        '1,A10,Duplicate Id,,,,,active,,', // 12 duplicate of line 2
        '11,A1,Duplicate Number,,,,,active,,', // 13 account number duplicate of line 2
        '12,,Xavier Quux,,,,,,,', // 14 missing account number and status
        '13,A13,Bad Id And Status,,,,,,,', // 15 missing status
        '99999999999999999999,A14,Huge Id,,,,,active,,', // 16
      ].join('\n'),
    );
    const r = await run(file);
    expect(r).toMatchObject({ read: 14, imported: 2, rejected: 12, warnings: 0, aborted: false });
    expect((await rows()).map((a) => a.id)).toEqual([1, 9]);
    const problems = (await report(file)).map((p) => `${p.line}|${p.id}|${p.field}|${p.reason}`);
    expect(problems).toEqual([
      '3||id|not a positive integer',
      '4||id|not a positive integer',
      '5|4|status|not one of active, suspended, closed, deleted',
      '6|5|sms_opt_out|not a boolean (true/false, yes/no, 1/0)',
      '7||row|expected 10 fields, found 4',
      '8||row|expected 10 fields, found 12',
      '9||row|characters after a closing quote',
      '14|12|account_number|missing',
      '14|12|status|missing',
      '15|13|status|missing',
      '16||id|not a positive integer',
      '12|1|id|duplicate of line 2',
      '13|11|account_number|duplicate of line 2',
    ]);
    const text = await readFile(`${file}.errors.csv`, 'utf8');
    for (const s of SECRET) expect(text).not.toContain(s);
  });

  it('rejects rows whose id or account number is already in the database (insert-only)', async () => {
    const first = await csvFile([HEADER, '1,A1,One,,,,,active,,', '2,A2,Two,,,,,active,,'].join('\n'));
    expect(await run(first)).toMatchObject({ imported: 2 });
    await t.db.query("UPDATE accounts SET pin_status = 'reset_required' WHERE id = 1");
    const second = await csvFile(
      [HEADER, '1,A1,One Again,,,,,active,,', '3,A2,Other Id Same Number,,,,,active,,', '4,A4,Four,,,,,active,,'].join(
        '\n',
      ),
    );
    const r = await run(second);
    expect(r).toMatchObject({ read: 3, imported: 1, rejected: 2 });
    expect((await report(second)).map((p) => `${p.line}|${p.field}|${p.reason}`)).toEqual([
      '2|account_number|already exists in the database',
      '2|id|already exists in the database',
      '3|account_number|already exists in the database',
    ]);
    // The existing account is untouched: its reset state belongs to the pipeline.
    const one = (await rows()).find((a) => a.id === 1)!;
    expect([one.full_name, one.pin_status]).toEqual(['One', 'reset_required']);
  });

  it('--strict imports nothing when any row is rejected, and still writes the report', async () => {
    const file = await csvFile(
      [HEADER, '1,A1,One,,,,,active,,', '2,A2,Two,,,,,bogus,,', '3,A3,Three,,,,,active,,'].join('\n'),
    );
    const r = await run(file, { strict: true });
    expect(r).toMatchObject({ read: 3, imported: 0, rejected: 1, aborted: true });
    expect(await rows()).toEqual([]);
    expect((await report(file)).map((p) => p.line)).toEqual([3]);
  });

  it('--strict with only warnings imports everything', async () => {
    const file = await csvFile([HEADER, '1,A1,One,not-a-phone,,,,active,,', '2,A2,Two,,,bad@,,active,,'].join('\n'));
    expect(await run(file, { strict: true })).toMatchObject({ imported: 2, rejected: 0, warnings: 2, aborted: false });
  });

  it('writes the report where --errors says', async () => {
    const file = await csvFile([HEADER, '1,A1,One,,,,,nope,,'].join('\n'));
    const errorsPath = path.join(dir, 'custom-report.csv');
    const r = await run(file, { errorsPath });
    expect(r.errorsPath).toBe(errorsPath);
    expect(await readFile(errorsPath, 'utf8')).toContain('2,1,rejected,status,');
  });
});

describe('import: concurrent writers', () => {
  it('an account inserted by another session after the checks comes back as lost, not as a failed import', async () => {
    const client = await t.db.connect();
    try {
      await client.query('BEGIN');
      await createImportStaging(client);
      const row = (line: number, id: number): AccountRow => ({
        line,
        id,
        accountNumber: `A${id}`,
        fullName: 'Name',
        phone: null,
        phoneType: null,
        email: null,
        plan: 'prepaid',
        status: 'active',
        smsOptOut: false,
        emailOptOut: false,
        pin: null,
      });
      await copyIntoImportStaging(
        client,
        (async function* () {
          yield encodeStagingRow(row(2, 1), null) + encodeStagingRow(row(3, 2), null);
        })(),
      );
      await t.db.query("INSERT INTO accounts (id, account_number, full_name) VALUES (2, 'OTHER', 'Other')");
      expect(await insertStagedAccounts(client)).toEqual({ inserted: 1, lost: [{ line: 3, id: 2 }] });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect((await rows()).map((a) => [a.id, a.account_number])).toEqual([
      [1, 'A1'],
      [2, 'OTHER'],
    ]);
  });
});

describe('import: bad files import nothing', () => {
  const bad = async (content: string | Buffer | null, pattern: RegExp, opts: Partial<ImportOptions> = {}) => {
    const file = content === null ? path.join(dir, 'does-not-exist.csv') : await csvFile(content);
    await expect(run(file, opts)).rejects.toThrow(ImportFileError);
    await expect(run(file, opts)).rejects.toThrow(pattern);
    expect(await rows()).toEqual([]);
    expect(existsSync(`${file}.errors.csv`)).toBe(false);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  };

  it('missing file', () => bad(null, /cannot read .*does-not-exist\.csv: no such file/));
  it('empty file', () => bad('', /is empty/));
  it('only blank lines', () => bad('\n\n\r\n', /the file is empty/));
  it('header but no rows', () => bad(`${HEADER}\n`, /no data rows/));
  it('unknown header column (reported by position, not echoed)', async () => {
    await bad(`${HEADER},favourite_colour\n1,A1,One,,,,,active,,,blue\n`, /unknown column name at position 11/);
    await expect(run(await csvFile(`${HEADER},favourite_colour\n`))).rejects.not.toThrow(/favourite_colour/);
  });
  it('missing header column', () =>
    bad(
      'id,account_number,full_name,phone,email,plan,status,sms_opt_out,email_opt_out\n1,A,B,,,,active,,\n',
      /missing column phone_type/,
    ));
  it('duplicate header column', () => bad(`${HEADER},email\n`, /column "email" appears more than once/));
  it('no header row at all: says so without echoing the first customer', async () => {
    const file = await csvFile('1,A1,Xavier Quux,+12125550777,mobile,x@example.com,,active,,\n');
    const err = await run(file).catch((e: Error) => e);
    expect(String(err)).toMatch(/is the header row missing\?/);
    expect(String(err)).not.toMatch(/Xavier|555|example/);
  });
  it('not UTF-8', () =>
    bad(
      Buffer.concat([Buffer.from(`${HEADER}\n1,A1,Jos`), Buffer.from([0xe9]), Buffer.from(',,,,,active,,\n')]),
      /not valid UTF-8/,
    ));
  it('a quoted field never closed', () =>
    bad(
      `${HEADER}\n1,A1,One,,,,,active,,\n2,A2,"Two,,,,,active,,\n3,A3,Three,,,,,active,,\n`,
      /line 3: a quoted field is never closed/,
    ));
  it('a pin column without a pepper', () => bad(`${HEADER},pin\n1,A1,One,,,,,active,,,1234\n`, /PIN_PEPPER/));
});

describe('import: PINs', () => {
  const pepper = { key: randomBytes(32), id: 'v1' };

  it('stores a peppered scrypt verifier for the pin column, never the PIN', async () => {
    const file = await csvFile(
      [`${HEADER},pin`, '1,A1,One,,,,,active,,,4821', '2,A2,Two,,,,,active,,,', '3,A3,Three,,,,,active,,,12ab'].join(
        '\n',
      ),
    );
    const r = await run(file, { pepper, pinParams: FAST_PIN });
    expect(r).toMatchObject({ imported: 3, warnings: 1, warningsByField: { pin: 1 } });
    const [one, two, three] = await rows();
    expect(one.pin_algo).toBe('scrypt:N=1024,r=8,p=1;pepper=v1');
    const verifier = { hash: one.pin_hash as Buffer, salt: one.pin_salt as Buffer, algo: one.pin_algo as string };
    expect(await verifyPin('4821', verifier, { v1: pepper.key })).toBe(true);
    expect(await verifyPin('4822', verifier, { v1: pepper.key })).toBe(false);
    expect([two.pin_hash, three.pin_hash]).toEqual([null, null]);
    const text = await readFile(`${file}.errors.csv`, 'utf8');
    expect(text).toContain('4,3,warning,pin,not 4-12 digits; no verifier stored');
    expect(text).not.toContain('12ab');
    const dump = JSON.stringify((await t.db.query('SELECT * FROM accounts')).rows);
    expect(dump).not.toContain('4821');
  });

  it('ignores the pin column when pins are off', async () => {
    const file = await csvFile([`${HEADER},pin`, '1,A1,One,,,,,active,,,4821'].join('\n'));
    expect(await run(file, { pins: false })).toMatchObject({ imported: 1, warnings: 0 });
    expect((await rows())[0].pin_hash).toBeNull();
  });
});

describe('import: size', () => {
  it('streams 20,000 rows in one transaction', async () => {
    const lines = [HEADER];
    for (let i = 1; i <= 20_000; i++) {
      lines.push(
        `${i},N${i},"Customer ${i}, Jr.",+1212555${String(i % 10000).padStart(4, '0')},mobile,c${i}@example.com,prepaid,active,false,false`,
      );
    }
    lines.push('20001,N20001,Bad,,,,,active,,,');
    const file = await csvFile(lines.join('\n'));
    const r = await run(file);
    expect(r).toMatchObject({ read: 20_001, imported: 20_000, rejected: 1 });
    expect((await report(file))[0]).toMatchObject({ line: 20_002, field: 'row' });
    const { rows: c } = await t.db.query(
      'SELECT count(*)::int AS n, min(id)::int AS lo, max(id)::int AS hi FROM accounts',
    );
    expect(c[0]).toEqual({ n: 20_000, lo: 1, hi: 20_000 });
  });
});
