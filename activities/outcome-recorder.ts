// Records outcomes as soon as their sends return, in small groups (group commit): a crash loses at
// most the sends in flight and the last few milliseconds, not a chunk of 250. Every write is
// fenced by the claim token; an outcome the database refuses belongs to a row another attempt
// took over, and is reported (never silently dropped).
import type { Db } from '../db/pool';
import { recordLeased } from '../db/sql/record-leased';
import type { Outcome } from '../domain/outcome';

const MAX_GROUP = 64;
const MAX_DELAY_MS = 20;
/** A failing write is retried for this long (a database restart) before the attempt gives up. */
const RETRY_FOR_MS = 15_000;

export class OutcomeRecorder {
  private buffer: Outcome[] = [];
  private writing: Promise<void> | undefined;
  /** Writes of single outcomes started by writeNow, beside the group commit. */
  private readonly urgent = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private error: Error | undefined;
  /** Outcomes refused because the row was taken over. */
  fenced = 0;

  constructor(
    private readonly db: Db,
    private readonly runId: string,
    private readonly token: string,
    private readonly onRecorded: (outcomes: Outcome[], recorded: Set<number>) => void = () => undefined,
  ) {}

  add(outcome: Outcome): void {
    this.buffer.push(outcome);
    if (this.buffer.length >= MAX_GROUP) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), MAX_DELAY_MS);
  }

  /**
   * Writes one outcome at once, in its own statement, and resolves when it is written. For an
   * email the relay accepted: SMTP has no lookup, so from the relay's acceptance until this write a
   * crash of the worker leaves the row 'sending', and its takeover sends the email again (the
   * chaos drill's SIGKILLs landed in that window, which the group commit's delay and its queue
   * behind the previous group had widened to tens of milliseconds).
   */
  async writeNow(outcome: Outcome): Promise<void> {
    const w = this.write([outcome]);
    this.urgent.add(w);
    try {
      await w;
    } finally {
      this.urgent.delete(w);
    }
  }

  /** Waits until everything added so far is written; throws when a write kept failing. */
  async flush(): Promise<void> {
    while (this.buffer.length || this.writing || this.urgent.size) {
      this.kick();
      await Promise.all([this.writing, ...this.urgent]);
    }
    if (this.error) throw this.error;
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.writing || !this.buffer.length) return;
    const group = this.buffer;
    this.buffer = [];
    this.writing = this.write(group).finally(() => {
      this.writing = undefined;
      if (this.buffer.length) this.kick();
    });
  }

  private async write(group: Outcome[]): Promise<void> {
    const until = Date.now() + RETRY_FOR_MS;
    for (let wait = 200; ; wait = Math.min(wait * 2, 2_000)) {
      try {
        const recorded = await recordLeased(this.db, this.runId, this.token, group);
        this.fenced += group.length - recorded.size;
        this.onRecorded(group, recorded);
        return;
      } catch (err) {
        if (Date.now() >= until) {
          this.error ??= err as Error;
          return;
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}
