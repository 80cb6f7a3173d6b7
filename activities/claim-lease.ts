// The claims one notify attempt holds, and the right to send for them. Every claim carries this
// attempt's token and a lease from the database clock; a renewal every `renewEveryMs` extends it
// (WHERE claim_token = mine) and reads the run's status. The attempt stops at once when a renewal
// finds a row taken over, and no provider call starts after a local deadline, measured on the
// monotonic clock, safely before the lease ends: a frozen (SIGSTOP, GC) or partitioned worker
// therefore cannot send once its lease is gone, whatever Temporal thinks of it.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Db } from '../db/pool';
import { renewClaims } from '../db/sql/renew-claims';
import { runControlListener } from './run-control-listener';

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  constructor(readonly lost: number) {
    super(`${lost} claimed account(s) were taken over by another attempt: this attempt stops sending`);
  }
}

export class RunStoppedError extends Error {
  override readonly name = 'RunStoppedError';
  constructor(readonly status: string) {
    super(`the run is ${status}: this attempt stops sending`);
  }
}

/** Run states in which nothing may be sent (an operator stopped it, or it failed). */
const STOPPED_STATES = new Set(['paused', 'cancelling', 'cancelled', 'failed']);

export class ClaimLease {
  readonly token = randomUUID();
  private readonly held = new Set<number>();
  private deadline = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private unlisten: (() => void) | undefined;
  private failure: Error | undefined;
  /** How much earlier than the lease's end the last provider call may start. */
  private readonly marginMs: number;

  constructor(
    private readonly db: Db,
    private readonly runId: string,
    readonly leaseMs: number,
    private readonly onStop: (err: Error) => void,
    private readonly renewEveryMs = Math.min(1_000, leaseMs / 4),
  ) {
    this.marginMs = Math.min(2_000, leaseMs / 4);
  }

  /** Why this attempt must stop sending, if it must. */
  get stopped(): Error | undefined {
    return this.failure;
  }

  start(): void {
    this.timer = setInterval(() => void this.renew(), this.renewEveryMs);
    // A pause or cancel is heard at once (LISTEN/NOTIFY); the interval stays as the fallback.
    this.unlisten = runControlListener(this.db)?.subscribe(this.runId, () => void this.renewAfterCurrent());
  }

  stop(): void {
    clearInterval(this.timer);
    this.unlisten?.();
    this.unlisten = undefined;
  }

  /** A renewal that starts after the one in progress (which may have read the status before the change). */
  private async renewAfterCurrent(): Promise<void> {
    await this.renewing?.catch(() => undefined);
    await this.renew();
  }

  /** The current time on the monotonic clock, taken BEFORE a claim or renewal is asked for. */
  now(): number {
    return performance.now();
  }

  /** Rows just claimed; `askedAt` is now() taken before the claim query. */
  adopt(ids: number[], askedAt: number): void {
    for (const id of ids) this.held.add(id);
    if (ids.length) this.deadline = Math.max(this.deadline, askedAt + this.leaseMs - this.marginMs);
  }

  release(ids: Iterable<number>): void {
    for (const id of ids) this.held.delete(id);
  }

  /** True while a provider call may start: not stopped, and before the local deadline. */
  canSend(): boolean {
    return this.failure === undefined && performance.now() < this.deadline;
  }

  /** Renews now (also used between chunks to see a pause at once). */
  renew(): Promise<void> {
    this.renewing ??= this.doRenew().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async doRenew(): Promise<void> {
    if (this.failure) return;
    const asked = performance.now();
    const ids = [...this.held];
    let answer: { held: number[]; runStatus: string | null };
    try {
      answer = await renewClaims(this.db, this.runId, this.token, ids, this.leaseMs);
    } catch {
      return; // database unreachable: the deadline is not extended, so sending stops by itself
    }
    const still = new Set(answer.held);
    const lost = ids.filter((id) => this.held.has(id) && !still.has(id));
    if (lost.length) return this.fail(new LeaseLostError(lost.length));
    if (ids.length) this.deadline = Math.max(this.deadline, asked + this.leaseMs - this.marginMs);
    if (answer.runStatus !== null && STOPPED_STATES.has(answer.runStatus))
      this.fail(new RunStoppedError(answer.runStatus));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.onStop(err);
  }
}
