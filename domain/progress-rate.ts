// Current rate and ETA of a run from successive progress samples. Pure.

/** Settled accounts per second over a sliding window of samples. */
export class RateTracker {
  private readonly samples: { t: number; settled: number }[] = [];
  constructor(private readonly windowMs = 30_000) {}

  add(tMs: number, settled: number): void {
    const last = this.samples[this.samples.length - 1];
    // A count going backwards (the run continued as new, or a fallback to an older checkpoint): start afresh.
    if (last && settled < last.settled) this.samples.length = 0;
    this.samples.push({ t: tMs, settled });
    while (this.samples.length > 2 && tMs - this.samples[1].t >= this.windowMs) this.samples.shift();
  }

  /** Undefined until two samples at least a second apart. */
  rate(): number | undefined {
    if (this.samples.length < 2) return undefined;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    const dt = (b.t - a.t) / 1000;
    return dt >= 1 ? (b.settled - a.settled) / dt : undefined;
  }
}

export function averageRate(settled: number, startedAtMs: number | undefined, nowMs: number): number | undefined {
  if (startedAtMs === undefined) return undefined;
  const s = (nowMs - startedAtMs) / 1000;
  return s >= 1 ? settled / s : undefined;
}

/** Seconds to settle `pending` accounts at `rate`; undefined when nothing moves or it cannot move (paused). */
export function etaSeconds(pending: number, rate: number | undefined, blocked: boolean): number | undefined {
  if (pending === 0) return 0;
  if (blocked || rate === undefined || rate <= 0) return undefined;
  return pending / rate;
}
