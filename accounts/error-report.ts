// The import's problem report: one CSV row per problem (line, id, severity, field, reason). It
// carries line numbers, opaque ids and rule names only, never a customer's value. Written to a
// temporary file and renamed at the end, so a failed import never leaves half a report.
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import type { Problem } from './validate-row';

export type Severity = 'rejected' | 'warning';

export const REPORT_HEADER = 'line,id,severity,field,reason\n';

export class ErrorReport {
  private pending: string[] = [];
  private finished = false;
  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly file: FileHandle,
  ) {}

  static async create(path: string): Promise<ErrorReport> {
    const tmpPath = `${path}.${process.pid}.tmp`;
    const file = await open(tmpPath, 'w');
    await file.write(REPORT_HEADER);
    return new ErrorReport(path, tmpPath, file);
  }

  async add(line: number, id: number | undefined, severity: Severity, problems: Problem[]): Promise<void> {
    for (const p of problems)
      this.pending.push(`${line},${id ?? ''},${severity},${csvCell(p.field)},${csvCell(p.reason)}\n`);
    if (this.pending.length >= 2000) await this.flush();
  }

  async finish(): Promise<void> {
    await this.flush();
    await this.file.close();
    await rename(this.tmpPath, this.path);
    this.finished = true;
  }

  /** Drops an unfinished report; after finish() it does nothing. */
  async abandon(): Promise<void> {
    if (this.finished) return;
    await this.file.close().catch(() => undefined);
    await unlink(this.tmpPath).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (!this.pending.length) return;
    const text = this.pending.join('');
    this.pending = [];
    await this.file.write(text);
  }
}

function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
