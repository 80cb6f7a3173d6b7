// The pure delivery rules: callback URL, status ranks, parsing, what to do about each outcome,
// and when a run must pause.
import { describe, expect, it } from 'vitest';
import {
  actionFor,
  DEFAULT_DELIVERY_GUARD,
  deliveryPauseReason,
  deliveryStateOf,
  parseStatusCallback,
  requestedUrl,
  statusCallbackUrl,
  statusRank,
} from '../domain/delivery';

describe('statusCallbackUrl', () => {
  it('carries the run and the reference, and asks Twilio to retry failed callbacks', () => {
    const url = statusCallbackUrl(
      'https://hooks.example.com/pinreset/twilio/status',
      'run-20240501-1',
      '9f3a1c0d2b4e6a8c',
    );
    expect(url).toBe(
      'https://hooks.example.com/pinreset/twilio/status?run=run-20240501-1&ref=9f3a1c0d2b4e6a8c#rc=5&rp=all',
    );
    expect(requestedUrl(url)).toBe(
      'https://hooks.example.com/pinreset/twilio/status?run=run-20240501-1&ref=9f3a1c0d2b4e6a8c',
    );
  });
  it('refuses what would need escaping or a second fragment', () => {
    expect(() => statusCallbackUrl('https://h.example/s', 'run 1', 'abc')).toThrow(/run id/);
    expect(() => statusCallbackUrl('https://h.example/s', 'run-1', 'a&b=c')).toThrow(/ref/);
    expect(() => statusCallbackUrl('https://h.example/s#x', 'run-1', 'abc')).toThrow(/fragment/);
  });
});

describe('status ranks', () => {
  it('orders the lifecycle, finals on top', () => {
    expect(statusRank('queued')! < statusRank('sending')!).toBe(true);
    expect(statusRank('sending')! < statusRank('sent')!).toBe(true);
    for (const s of ['delivered', 'undelivered', 'failed']) expect(statusRank(s)).toBe(4);
    expect(statusRank('exploded')).toBeUndefined();
    expect(deliveryStateOf('queued')).toBe('accepted');
    expect(deliveryStateOf('canceled')).toBe('failed');
  });
  it('parses a callback, refusing malformed SIDs, statuses and codes', () => {
    const q = new URLSearchParams('run=r-1&ref=ABC');
    const sid = `SM${'a'.repeat(32)}`;
    expect(parseStatusCallback({ MessageSid: sid, MessageStatus: 'undelivered', ErrorCode: '30005' }, q)).toEqual({
      messageSid: sid,
      status: 'undelivered',
      rank: 4,
      errorCode: '30005',
      runId: 'r-1',
      ref: 'ABC',
    });
    expect(parseStatusCallback({ MessageSid: 'SMnope', MessageStatus: 'sent' }, q)).toMatch(/MessageSid/);
    expect(parseStatusCallback({ MessageSid: sid, MessageStatus: 'bogus' }, q)).toMatch(/MessageStatus/);
    expect(parseStatusCallback({ MessageSid: sid, MessageStatus: 'failed', ErrorCode: '3000x' }, q)).toMatch(
      /ErrorCode/,
    );
  });
});

describe('acting on the outcome', () => {
  it.each([
    ['delivered', null, false, 'none'],
    ['undelivered', '30005', false, 'fallback'],
    ['undelivered', '30006', false, 'fallback'],
    ['undelivered', '30003', false, 'retry_sms'],
    ['undelivered', '30003', true, 'fallback'],
    ['undelivered', '30007', false, 'filtered'],
    ['undelivered', '30034', false, 'filtered'],
    ['failed', '30001', false, 'queue_overflow'],
    ['failed', '30001', true, 'fallback'],
    ['undelivered', '30008', false, 'none'],
  ] as const)('%s %s (retried %s) -> %s', (state, code, retried, kind) => {
    expect(actionFor(state, code, retried).kind).toBe(kind);
  });

  it('pauses on any 30001, and on a filtered share above the threshold over enough receipts', () => {
    const g = { ...DEFAULT_DELIVERY_GUARD, filteredRate: 0.02 };
    expect(DEFAULT_DELIVERY_GUARD.filteredRate).toBe(0.05);
    expect(deliveryPauseReason({ finals: 10, filtered: 0, queueOverflow: 1 }, g, 100)).toMatch(
      /30001 .*100 msg\/s is above the sender's throughput/,
    );
    expect(deliveryPauseReason({ finals: 10, filtered: 0, queueOverflow: 2 }, g, 'unlimited', 60)).toMatch(
      /failed 2 message\(s\) with 30001 .*the rate unlimited is above the sender's throughput \(the sender's budget, shared by all runs: 60 msg\/s\); lower the run's rate with set-rate or the sender's budget with `senders set-rate`/,
    );
    expect(deliveryPauseReason({ finals: 200, filtered: 4, queueOverflow: 0 }, g, 100)).toBeUndefined(); // 2.0%: not above
    expect(deliveryPauseReason({ finals: 200, filtered: 5, queueOverflow: 0 }, g, 100)).toMatch(
      /2\.5% of the last 200 delivery receipts were carrier-filtered/,
    );
    expect(deliveryPauseReason({ finals: 20, filtered: 20, queueOverflow: 0 }, g, 100)).toBeUndefined(); // too few to judge
  });
});
