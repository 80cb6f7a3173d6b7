// Streaming RFC 4180 CSV reader: records one at a time, each with the line it starts on (quoted
// fields may span lines), so reports can point at the right line of a file of any size.
// A record that breaks the quoting rules is returned marked `malformed` (the caller rejects that
// row and carries on); a problem that makes the rest of the file unreadable throws CsvFileError.
// Messages never quote field contents: they are customer data.

export interface CsvRecord {
  /** 1-based line on which the record starts. */
  line: number;
  fields: string[];
  /** Why the record breaks the quoting rules, if it does. */
  malformed?: string;
}

export class CsvFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvFileError';
  }
}

/** Guards memory against an unbalanced quote swallowing the rest of a large file. */
export const MAX_FIELD_CHARS = 1 << 20;

const enum S {
  FieldStart,
  Unquoted,
  Quoted,
  /** Saw a quote inside a quoted field: either an escaped quote or the closing one. */
  QuoteInQuoted,
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

export async function* readCsvRecords(input: AsyncIterable<Buffer | string>): AsyncGenerator<CsvRecord> {
  const decoder = new TextDecoder('utf-8', { fatal: true }); // strips a leading BOM
  let state = S.FieldStart;
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let malformed: string | undefined;
  let afterCR = false;
  const out: CsvRecord[] = [];

  const endField = () => {
    fields.push(field);
    field = '';
  };
  const endRecord = () => {
    endField();
    // A blank line is no record (a trailing newline, or spacing between blocks).
    if (!(fields.length === 1 && fields[0] === '' && !malformed)) out.push({ line: recordLine, fields, malformed });
    fields = [];
    malformed = undefined;
    state = S.FieldStart;
    recordLine = line;
  };

  const feed = (text: string) => {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === LF && afterCR) {
        // Second half of CRLF: the CR already counted the line (and ended the record).
        afterCR = false;
        if (state === S.Quoted) field += '\n';
        continue;
      }
      afterCR = c === CR;
      const newline = c === LF || c === CR;
      if (newline) line++;
      switch (state) {
        case S.FieldStart:
          if (c === QUOTE) state = S.Quoted;
          else if (c === COMMA) endField();
          else if (newline) endRecord();
          else {
            field = text[i];
            state = S.Unquoted;
          }
          break;
        case S.Unquoted: {
          // Fast path: copy the run of ordinary characters in one slice.
          let j = i;
          while (j < text.length) {
            const d = text.charCodeAt(j);
            if (d === COMMA || d === LF || d === CR || d === QUOTE) break;
            j++;
          }
          if (j > i) {
            field += text.slice(i, j);
            i = j - 1;
            afterCR = false;
            break;
          }
          if (c === COMMA) {
            endField();
            state = S.FieldStart;
          } else if (newline) endRecord();
          else {
            malformed ??= 'quote inside an unquoted field';
            field += '"';
          }
          break;
        }
        case S.Quoted: {
          if (c === QUOTE) {
            state = S.QuoteInQuoted;
            break;
          }
          let j = i;
          while (j < text.length) {
            const d = text.charCodeAt(j);
            if (d === QUOTE || d === LF || d === CR) break;
            j++;
          }
          if (j > i) {
            field += text.slice(i, j);
            i = j - 1;
            afterCR = false;
          } else field += text[i]; // a newline inside quotes belongs to the value
          break;
        }
        case S.QuoteInQuoted:
          if (c === QUOTE) {
            field += '"';
            state = S.Quoted;
          } else if (c === COMMA) {
            endField();
            state = S.FieldStart;
          } else if (newline) endRecord();
          else {
            malformed ??= 'characters after a closing quote';
            field += text[i];
            state = S.Unquoted;
          }
          break;
      }
      if (field.length > MAX_FIELD_CHARS) {
        throw new CsvFileError(
          `line ${recordLine}: a field is longer than ${MAX_FIELD_CHARS} characters (unbalanced quote?)`,
        );
      }
    }
  };

  let started = false;
  const decode = (chunk: Buffer | string | undefined): string => {
    let text: string;
    try {
      text =
        typeof chunk === 'string'
          ? chunk
          : chunk === undefined
            ? decoder.decode()
            : decoder.decode(chunk, { stream: true });
    } catch {
      throw new CsvFileError(`not valid UTF-8 (near line ${line})`);
    }
    // The decoder drops a byte-order mark; text handed in as strings may still start with one.
    if (!started && text !== '') {
      started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  };

  for await (const chunk of input) {
    feed(decode(chunk));
    yield* out;
    out.length = 0;
  }
  feed(decode(undefined));
  if ((state as S) === S.Quoted) throw new CsvFileError(`line ${recordLine}: a quoted field is never closed`);
  if ((state as S) !== S.FieldStart || fields.length > 0) endRecord();
  yield* out;
}
