// The live status Markdown of the Web UI (workflow current details): every state an operator
// must tell apart, the ETA, and a table whose labels tests/webui.test.ts reads back.
import { describe, expect, it } from 'vitest';
import type { Progress } from '../workflows/api';
import { formatDuration, progressMarkdown, PROGRESS_ROWS } from '../workflows/progress-markdown';
import { zeroCounts } from '../domain/types';

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

function progress(over: Partial<Progress> = {}, counts: Partial<Progress['counts']> = {}): Progress {
  return {
    runId: 'r-1', phase: 'notifying', counts: { ...zeroCounts(), planned: 10_000, reset: 10_000, sentSms: 3_000, sentEmail: 500, unreachable: 400, failed: 100, pending: 6_000, ...counts },
    paused: false, autoPaused: false, cancelRequested: false, awaitingApproval: false, ratePerSecond: 100,
    batches: { planned: 10, reset: 10, notified: 4, inFlight: 2 }, startedAtMs: T0, pausedMs: 0, continuedAsNew: 0, ...over,
  };
}

const at = (s: number) => T0 + s * 1000;

describe('progressMarkdown', () => {
  it('leaves time spent paused out of the throughput and ETA', () => {
    // The same 4,000 settled, but 50 of the 150 s were paused: 40/s, not 26.7/s.
    expect(progressMarkdown(progress({ pausedMs: 50_000 }), at(150))).toContain('**Throughput**: 40 accounts/s');
  });

  it('shows counts in a table with stable labels, progress, rate and ETA', () => {
    const md = progressMarkdown(progress(), at(100));
    const rows = md.split('\n').filter((l) => /^\| (?!Outcome|---)/.test(l)).map((l) => l.split('|').map((c) => c.trim()).slice(1, 3));
    expect(rows.map((r) => r[0])).toEqual(Object.values(PROGRESS_ROWS));
    expect(Object.fromEntries(rows)).toMatchObject({ 'planned (cohort)': '10,000', 'notified by SMS': '3,000', pending: '6,000' });
    expect(md).toContain('**Progress**: 4,000 of 10,000 accounts settled (40%) · **Rate ceiling**: 100 msg/s');
    // 4,000 settled in 100 s = 40/s, below the 100/s ceiling: 6,000 / 40 = 150 s.
    expect(md).toContain('**Throughput**: 40 accounts/s (average since start) · **ETA**: about 2 min 30 s for 6,000 pending');
    expect(md).toContain('**State**: notifying');
  });

  it('bounds the ETA by a lowered rate ceiling', () => {
    expect(progressMarkdown(progress({ ratePerSecond: 10 }), at(100))).toContain('ETA**: about 10 min 00 s for 6,000 pending');
    expect(progressMarkdown(progress({ ratePerSecond: 'unlimited' }), at(100))).toContain('Rate ceiling**: unlimited');
  });

  it('says why a run is paused, by whom, and that it has no ETA then', () => {
    const op = progressMarkdown(progress({ paused: true, pauseReason: 'checking | complaints\nfrom ops' }), at(100));
    expect(op).toContain('**State**: **paused** (checking / complaints from ops). Batches in flight finish; signal `resume` to continue.');
    expect(op).toContain('**ETA**: none while paused (6,000 pending)');
    const auto = progressMarkdown(progress({ paused: true, autoPaused: true, pauseReason: 'auto-paused: 9.0% of the last 1000 notification attempts failed (threshold 5.0%)' }), at(100));
    expect(auto).toContain('**State**: **paused automatically**: 9.0% of the last 1000 notification attempts failed (threshold 5.0%).');
    expect(auto).toContain('signal `resume` or `cancel`');
  });

  it('shows awaiting approval, cancelling, preparing and the finish', () => {
    const canary = progressMarkdown(progress({ phase: 'awaiting_approval', awaitingApproval: true }), at(10));
    expect(canary).toContain('**awaiting approval**: the canary batch is done');
    expect(canary).toContain('ETA**: none until the canary is approved');
    expect(progressMarkdown(progress({ cancelRequested: true }), at(10))).toContain('**State**: **cancelling**');
    expect(progressMarkdown(progress({ phase: 'preparing' }, zeroCounts()), at(0))).toContain('ETA**: after the cohort is frozen');
    const done = progressMarkdown(progress({ phase: 'completed', exposureWindowMs: 4_321 }, { sentSms: 9_000, sentEmail: 500, pending: 0 }), at(3_700));
    expect(done).toContain('**State**: **completed**');
    expect(done).toContain('**Finished**: 10,000 of 10,000 accounts settled in 1 h 01 min.');
    expect(done).toContain('every PIN of the cohort was invalidated 4.3 s after the start');
    expect(done).not.toContain('ETA');
  });

  it('formats durations', () => {
    expect([0, 999, 59_000, 60_000, 3_599_000, 3_600_000, 49 * 3_600_000].map(formatDuration)).toEqual(['0 s', '1 s', '59 s', '1 min 00 s', '59 min 59 s', '1 h 00 min', '2 d 01 h']);
  });
});
