// Per-worker, per-run gate in front of every provider call. It reserves slots from the run's
// global limiter in PostgreSQL, so all workers together stay under the configured rate, and it
// rereads the rate at every reservation, so set-rate takes effect within a block.
import type { Db } from '../db/pool';
import { acquireSendSlots } from '../db/sql/acquire-send-slots';
import { penalizeSendRate } from '../db/sql/penalize-send-rate';
import type { Clock } from './deps';

/** Slots per reservation: about 50 ms of traffic, so bursts stay small and the DB sees ~20 calls/s. */
export function blockSize(rate: number): number {
  return Math.max(1, Math.min(50, Math.round(rate / 20)));
}

/** A worker pushes the shared schedule back at most this often. */
const PENALTY_EVERY_MS = 1_000;

/** While the rate is unlimited, look again this often for a new rate. */
const UNLIMITED_RECHECK_MS = 1_000;
/** Look for a new rate this long before the unlimited period ends, so no send waits for it. */
const UNLIMITED_PREFETCH_MS = 250;

export class SendGate {
  private tokens = 0;
  private rate = 1;
  private unlimitedUntil = 0;
  private lastPenaltyMs = 0;
  private refilling: Promise<void> | null = null;
  /** Tokens of the block currently being spent; the next block is reserved when half are gone. */
  private lastBlock = 1;

  constructor(private readonly db: Db, private readonly runId: string, private readonly clock: Clock) {}

  async take(): Promise<void> {
    for (;;) {
      const now = this.clock.now().getTime();
      if (now < this.unlimitedUntil) {
        // Unlimited: ask again for the rate shortly before the period ends, in the background.
        if (now >= this.unlimitedUntil - UNLIMITED_PREFETCH_MS) this.prefetch();
        return;
      }
      if (this.tokens > 0) {
        this.tokens -= 1;
        // Double buffering: reserve the next block while this one is being spent, so the database
        // round trip overlaps with sending instead of stalling every worker once per block (at
        // 300 msg/s a block lasts 50 ms, about one loaded round trip: the rate fell 3-11% short).
        // GCRA makes the early reservation wait for its own slot, so the rate is unchanged.
        if (this.tokens <= this.lastBlock / 2) this.prefetch();
        return;
      }
      await this.startRefill();
    }
  }

  /**
   * The provider throttled us: every worker backs off a little. At most once per second per
   * worker, so a steady share of 429s slows the run a little instead of stalling it (each
   * throttled message also backs off on its own).
   */
  async penalize(ms: number): Promise<void> {
    const now = this.clock.now().getTime();
    if (this.rate <= 0 || now - this.lastPenaltyMs < PENALTY_EVERY_MS) return;
    this.lastPenaltyMs = now;
    await penalizeSendRate(this.db, this.runId, ms);
  }

  /** A reservation nobody waits for yet: its failure surfaces at the next reservation awaited. */
  private prefetch(): void {
    this.startRefill().catch(() => undefined);
  }

  /** One reservation at a time per gate; callers share it. */
  private startRefill(): Promise<void> {
    this.refilling ??= this.refill().finally(() => {
      this.refilling = null;
    });
    return this.refilling;
  }

  private async refill(): Promise<void> {
    const n = blockSize(this.rate);
    const { waitMs, rate } = await acquireSendSlots(this.db, this.runId, n);
    this.rate = rate;
    if (rate === 0) {
      this.unlimitedUntil = this.clock.now().getTime() + UNLIMITED_RECHECK_MS;
      return;
    }
    this.unlimitedUntil = 0;
    if (waitMs > 0) await this.clock.sleep(waitMs);
    this.tokens += n;
    this.lastBlock = n;
  }
}
