// The live figures of a run (domain/live-progress.ts): achieved rate, ETA, stall. Pure functions:
// the workflow's details, `status` and the Prometheus gauges all compute them from one reading.
import { describe, expect, it } from 'vitest';
import {
  achievedRate,
  etaSeconds,
  MIN_WINDOW_S,
  stallSeconds,
  STALL_AFTER_S,
  type LiveReading,
} from '../domain/live-progress';
import type { Counts } from '../domain/types';

const NOW = 1_800_000_000_000;
function counts(c: Partial<Counts>): Counts {
  return {
    planned: 0,
    reset: 0,
    skipped: 0,
    sentSms: 0,
    sentEmail: 0,
    fellBack: 0,
    unreachable: 0,
    failed: 0,
    notifySkipped: 0,
    pending: 0,
    ambiguous: 0,
    ...c,
  };
}
function reading(r: Partial<LiveReading> & { counts: Counts }): LiveReading {
  return { inFlight: 0, sentInWindow: 0, windowS: 60, readAtMs: NOW, topErrors: [], ...r };
}

describe('achievedRate', () => {
  it('is messages accepted per second over the window', () => {
    expect(achievedRate(reading({ counts: counts({ planned: 10 }), sentInWindow: 3_000, windowS: 60 }))).toBe(50);
  });
  it('is unknown before MIN_WINDOW_S of sending (claims run ahead of sends at first)', () => {
    expect(
      achievedRate(reading({ counts: counts({ planned: 10 }), sentInWindow: 500, windowS: MIN_WINDOW_S - 1 })),
    ).toBeUndefined();
  });
});

describe('etaSeconds', () => {
  const mid = counts({ planned: 20_000, reset: 20_000, sentSms: 5_000, pending: 15_000 });
  it('is the pending accounts at the achieved rate', () => {
    expect(etaSeconds(reading({ counts: mid, sentInWindow: 3_000 }), false)).toBe(300);
  });
  it('counts only the share of pending accounts that will need a message', () => {
    // Half the settled accounts were unreachable: half the pending ones will settle at once.
    const c = counts({ planned: 20_000, sentSms: 5_000, unreachable: 5_000, pending: 10_000 });
    expect(etaSeconds(reading({ counts: c, sentInWindow: 3_000 }), false)).toBe(100);
  });
  it('is unknown while blocked (paused, awaiting approval, cancelling) or before a rate', () => {
    expect(etaSeconds(reading({ counts: mid, sentInWindow: 3_000 }), true)).toBeUndefined();
    expect(etaSeconds(reading({ counts: mid, sentInWindow: 0 }), false)).toBeUndefined();
    expect(etaSeconds(reading({ counts: mid, sentInWindow: 900, windowS: 10 }), false)).toBeUndefined();
  });
  it('is 0 once nothing is pending, but unknown before the cohort is planned (not "0 s")', () => {
    expect(etaSeconds(reading({ counts: counts({ planned: 100, sentSms: 100 }) }), false)).toBe(0);
    expect(etaSeconds(reading({ counts: counts({}), windowS: 0 }), false)).toBeUndefined();
  });
});

describe('stallSeconds', () => {
  const c = counts({ planned: 100, pending: 50 });
  it('warns after STALL_AFTER_S without a provider call while work remains', () => {
    const idle = reading({ counts: c, lastActivityAtMs: NOW - (STALL_AFTER_S + 5) * 1000 });
    expect(stallSeconds(idle, { sending: true, ratePerSecond: 100 })).toBe(STALL_AFTER_S + 5);
    expect(stallSeconds(idle, { sending: false, ratePerSecond: 100 })).toBeUndefined();
    expect(
      stallSeconds(reading({ counts: c, lastActivityAtMs: NOW - 10_000 }), { sending: true, ratePerSecond: 100 }),
    ).toBeUndefined();
  });
  it('does not call a just-resumed run stalled for the pause before', () => {
    const idle = reading({ counts: c, lastActivityAtMs: NOW - 600_000 });
    expect(stallSeconds(idle, { sending: true, ratePerSecond: 100, sinceMs: NOW - 5_000 })).toBeUndefined();
  });
});
