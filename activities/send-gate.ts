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

/** While the rate is unlimited, look again this often for a new rate. */
const UNLIMITED_RECHECK_MS = 1_000;

export class SendGate {
  private tokens = 0;
  private rate = 1;
  private unlimitedUntil = 0;
  private refilling: Promise<void> | null = null;

  constructor(private readonly db: Db, private readonly runId: string, private readonly clock: Clock) {}

  async take(): Promise<void> {
    for (;;) {
      if (this.clock.now().getTime() < this.unlimitedUntil) return;
      if (this.tokens > 0) {
        this.tokens -= 1;
        return;
      }
      this.refilling ??= this.refill().finally(() => {
        this.refilling = null;
      });
      await this.refilling;
    }
  }

  /** The provider throttled us: every worker backs off. */
  async penalize(ms: number): Promise<void> {
    if (this.rate > 0) await penalizeSendRate(this.db, this.runId, ms);
  }

  private async refill(): Promise<void> {
    const n = blockSize(this.rate);
    const { waitMs, rate } = await acquireSendSlots(this.db, this.runId, n);
    this.rate = rate;
    if (rate === 0) {
      this.unlimitedUntil = this.clock.now().getTime() + UNLIMITED_RECHECK_MS;
      return;
    }
    if (waitMs > 0) await this.clock.sleep(waitMs);
    this.tokens += n;
  }
}
