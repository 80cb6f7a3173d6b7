import { describe, expect, it } from 'vitest';
import { CsvFileError, readCsvRecords, type CsvRecord } from '../accounts/csv-reader';
import { parseHeader } from '../accounts/csv-columns';

async function parse(chunks: (string | Buffer)[]): Promise<CsvRecord[]> {
  const out: CsvRecord[] = [];
  for await (const r of readCsvRecords(
    (async function* () {
      yield* chunks;
    })(),
  ))
    out.push(r);
  return out;
}

/** Every way of cutting the bytes into pieces of `size`: CRLF, quotes and multi-byte UTF-8 split anywhere. */
function pieces(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

const TEXT =
  '\uFEFFa,b,c\r\n' +
  '1,"x, ""y""",z\r\n' +
  '2,"multi\r\nline\nfield",Zoë 王芳\r\n' +
  '\r\n' +
  '3,,\n' +
  '4,bad"quote,x\n' +
  '5,"closed"junk,y\r' +
  '6,last,no-newline';

const EXPECTED: CsvRecord[] = [
  { line: 1, fields: ['a', 'b', 'c'], malformed: undefined },
  { line: 2, fields: ['1', 'x, "y"', 'z'], malformed: undefined },
  { line: 3, fields: ['2', 'multi\r\nline\nfield', 'Zoë 王芳'], malformed: undefined },
  { line: 7, fields: ['3', '', ''], malformed: undefined },
  { line: 8, fields: ['4', 'bad"quote', 'x'], malformed: 'quote inside an unquoted field' },
  { line: 9, fields: ['5', 'closedjunk', 'y'], malformed: 'characters after a closing quote' },
  { line: 10, fields: ['6', 'last', 'no-newline'], malformed: undefined },
];

describe('readCsvRecords', () => {
  it('parses RFC 4180 with the line each record starts on', async () => {
    expect(await parse([TEXT])).toEqual(EXPECTED);
  });

  it('gives the same records however the bytes are chunked', async () => {
    const buf = Buffer.from(TEXT, 'utf8');
    for (const size of [1, 2, 3, 5, 7, 13]) expect(await parse(pieces(buf, size))).toEqual(EXPECTED);
  });

  it('keeps a trailing empty field and skips blank lines', async () => {
    expect((await parse(['a,b,\n\n\nc,,\n'])).map((r) => [r.line, r.fields])).toEqual([
      [1, ['a', 'b', '']],
      [4, ['c', '', '']],
    ]);
  });

  it('fails the file on invalid UTF-8 or an unclosed quote', async () => {
    await expect(parse([Buffer.from([0x61, 0x2c, 0xff, 0x0a])])).rejects.toThrow(CsvFileError);
    await expect(parse(['a,b\n1,"open\n2,x\n'])).rejects.toThrow(/line 2: a quoted field is never closed/);
  });
});

describe('parseHeader', () => {
  it('maps columns in any order, case-insensitively, with an optional pin', () => {
    const h = parseHeader([
      'Email',
      ' ID ',
      'account_number',
      'full_name',
      'phone',
      'phone_type',
      'plan',
      'status',
      'sms_opt_out',
      'email_opt_out',
      'pin',
    ]);
    expect(h).toEqual({ columns: expect.objectContaining({ email: 0, id: 1, pin: 10, count: 11 }) });
  });

  it('lists every problem without echoing unknown names', () => {
    const h = parseHeader(['id', 'id', 'Jane Doe', 'account_number']);
    expect('problems' in h && h.problems.join('; ')).toBe(
      'column "id" appears more than once; unknown column name at position 3; missing column full_name, phone, phone_type, email, plan, status, sms_opt_out, email_opt_out',
    );
  });
});
