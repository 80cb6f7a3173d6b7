// The live status Markdown of the Web UI (workflow current details): every state an operator
// must tell apart, the ETA, and a table whose labels tests/webui.test.ts reads back.
import { describe, expect, it } from 'vitest';
import type { Progress } from '../workflows/api';
import { formatDuration, progressMarkdown, PROGRESS_ROWS } from '../workflows/progress-markdown';
import { zeroCounts } from '../domain/types';

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

function progress(over: Partial<Progress> = {}, counts: Partial<Progress['counts']> = {}): Progress {
  return {
    runId: 'r-1',
    phase: 'notifying',
    counts: {
      ...zeroCounts(),
      planned: 10_000,
      reset: 10_000,
      sentSms: 3_000,
      sentEmail: 500,
      unreachable: 400,
      failed: 100,
      pending: 6_000,
      ...counts,
    },
    paused: false,
    autoPaused: false,
    cancelRequested: false,
    awaitingApproval: false,
    ratePerSecond: 100,
    batches: { planned: 10, reset: 10, notified: 4, inFlight: 2 },
    startedAtMs: T0,
    pausedMs: 0,
    continuedAsNew: 0,
    cohort: 'all_active',
    canary: 0,
    ...over,
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
    const rows = md
      .split('\n')
      .filter((l) => /^\| (?!Outcome|---)/.test(l))
      .map((l) =>
        l
          .split('|')
          .map((c) => c.trim())
          .slice(1, 3),
      );
    expect(rows.map((r) => r[0])).toEqual(Object.values(PROGRESS_ROWS));
    expect(Object.fromEntries(rows)).toMatchObject({
      'planned (cohort)': '10,000',
      'notified by SMS': '3,000',
      pending: '6,000',
    });
    expect(md).toContain('**Progress**: 4,000 of 10,000 accounts settled (40%) · **Rate ceiling**: 100 msg/s');
    // 4,000 settled in 100 s = 40/s, below the 100/s ceiling: 6,000 / 40 = 150 s.
    expect(md).toContain(
      '**Throughput**: 40 accounts/s (average since start) · **ETA**: about 2 min 30 s for 6,000 pending',
    );
    expect(md).toContain('**State**: notifying');
  });

  it('bounds the ETA by a lowered rate ceiling', () => {
    expect(progressMarkdown(progress({ ratePerSecond: 10 }), at(100))).toContain(
      'ETA**: about 10 min 00 s for 6,000 pending',
    );
    expect(progressMarkdown(progress({ ratePerSecond: 'unlimited' }), at(100))).toContain('Rate ceiling**: unlimited');
  });

  it('says why a run is paused, by whom, and that it has no ETA then', () => {
    const op = progressMarkdown(progress({ paused: true, pauseReason: 'checking | complaints\nfrom ops' }), at(100));
    expect(op).toContain(
      '**State**: **paused** (checking / complaints from ops). Sending stops within seconds; signal `resume` to continue.',
    );
    expect(op).toContain('**ETA**: none while paused (6,000 pending)');
    const auto = progressMarkdown(
      progress({
        paused: true,
        autoPaused: true,
        pauseReason: 'auto-paused: 9.0% of the last 1000 notification attempts failed (threshold 5.0%)',
      }),
      at(100),
    );
    expect(auto).toContain(
      '**State**: **paused automatically**: 9.0% of the last 1000 notification attempts failed (threshold 5.0%).',
    );
    expect(auto).toContain('signal `resume` or `cancel`');
  });

  it('shows awaiting approval, cancelling, preparing and the finish', () => {
    const canary = progressMarkdown(progress({ phase: 'awaiting_approval', awaitingApproval: true }), at(10));
    expect(canary).toContain('**awaiting approval**: the canary batch is done');
    expect(canary).toContain('ETA**: none until the canary is approved');
    expect(progressMarkdown(progress({ cancelRequested: true }), at(10))).toContain('**State**: **cancelling**');
    expect(progressMarkdown(progress({ phase: 'preparing' }, zeroCounts()), at(0))).toContain(
      'ETA**: after the cohort is frozen',
    );
    const done = progressMarkdown(
      progress({ phase: 'completed', exposureWindowMs: 4_321 }, { sentSms: 9_000, sentEmail: 500, pending: 0 }),
      at(3_700),
    );
    expect(done).toContain('**State**: **completed**');
    expect(done).toContain(
      '**Finished** (completed): 10,000 of 10,000 accounts settled; ran 1 h 01 min from start to now.',
    );
    expect(done).toContain('every PIN of the cohort was invalidated 4.3 s after the start');
    expect(done).not.toContain('ETA');
  });

  it('with a ledger reading: the rate over the last minute, an ETA from it, accounts in flight and the reading time', () => {
    // 6,000 pending; of the 4,000 settled, 3,600 needed a message (3,500 sent + 100 failed): 90%.
    // 5,700 sent in the last 60 s = 95 msg/s sent, 97.7 attempts/s: 6,000 x 0.9 / 97.7 = 55 s.
    const live = {
      counts: progress().counts,
      inFlight: 230,
      sentInWindow: 5_700,
      windowS: 60,
      lastActivityAtMs: at(99),
      readAtMs: at(100),
      topErrors: [
        { outcome: 'failed', code: '21211', count: 80 },
        { outcome: 'unreachable', code: 'no_contact', count: 400 },
      ],
    };
    const md = progressMarkdown(progress({ live }), at(102));
    expect(progressMarkdown(progress({ live: { ...live, windowS: 20 } }), at(102))).toContain(
      '**Sent**: - over the last 20 s · **ETA**: estimating (after 30 s of sending)',
    );
    expect(md).toContain(
      '**Sent**: 95 msg/s over the last 60 s · **ETA**: about 55 s for 6,000 pending · **In flight**: 230 accounts being sent now',
    );
    expect(md).toContain('Read from the ledger at 12:01:40 UTC');
    expect(md).toContain('**Top error codes**: 21211 failed 80, no_contact unreachable 400');
    expect(md).not.toContain('STALLED');
    // Nothing sent for 90 s while accounts are pending: a stall, unless paused.
    const stalled = { ...live, lastActivityAtMs: at(10) };
    expect(progressMarkdown(progress({ live: stalled }), at(100))).toContain(
      '**STALLED**: no provider call for 1 min 30 s while 6,000 accounts are pending',
    );
    expect(progressMarkdown(progress({ live: stalled, paused: true }), at(100))).not.toContain('STALLED');
  });

  it('reads the end right: cancelled with its reason, failed, true durations, redrive wording', () => {
    const cancelled = progressMarkdown(
      progress({ phase: 'cancelled', endReason: 'wrong cohort', finishedAtMs: at(600), pausedMs: 480_000 }),
      at(900),
    );
    expect(cancelled).toContain('**State**: **CANCELLED** (wrong cohort)');
    expect(cancelled).toContain('ran 10 min 00 s from start to end (paused 8 min 00 s of it)');
    expect(progressMarkdown(progress({ phase: 'failed', endReason: 'workflow failed: boom' }), at(10))).toContain(
      '**State**: **FAILED**: workflow failed: boom',
    );
    const redrive = progressMarkdown(progress({ cohort: 'redrive' }), at(10));
    expect(redrive).toContain('### Redrive run `r-1`: notifications only, PINs are not reset again');
    expect(redrive).toContain('| PIN reset (by the source run; not reset again) | 10,000 |');
    const canary = progressMarkdown(progress({ canary: 100, approval: { by: 'lead@secops', atMs: at(30) } }), at(40));
    expect(canary).toContain(
      '**Canary**: the first 100 accounts are notified first; every PIN is invalidated at once. Approved by lead@secops at 2024-05-01 12:00:30 UTC.',
    );
    const tripped = progressMarkdown(
      progress({
        paused: true,
        autoPaused: true,
        autoPause: { attempts: 100, failed: 18, batch: { first: 1, last: 2000 } },
      }),
      at(40),
    );
    expect(tripped).toContain(
      '**Auto-pause trigger**: 18 of 100 attempts failed (tripped in batch 1..2000, included in the counts above).',
    );
  });

  it('formats durations', () => {
    expect([0, 999, 59_000, 60_000, 3_599_000, 3_600_000, 49 * 3_600_000].map(formatDuration)).toEqual([
      '0 s',
      '1 s',
      '59 s',
      '1 min 00 s',
      '59 min 59 s',
      '1 h 00 min',
      '2 d 01 h',
    ]);
  });
});
