// Argument parsers for commander: each names the rule it enforces; commander names the option.
// Ranges come from domain/run.ts LIMITS, the same ones paramProblems and the workflow apply.
import { InvalidArgumentError } from 'commander';
import { LIMITS, rateProblems, RUN_ID_PATTERN, type Rate } from '../domain/run';
import { CHANNEL_POLICIES, type ChannelPolicy } from '../domain/types';

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function numberIn(min: number, max: number, integer: boolean) {
  return (v: string): number => {
    const s = v.trim();
    const n = Number(s);
    if (!NUMBER.test(s) || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      throw new InvalidArgumentError(`must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    return n;
  };
}

export const limit = (name: keyof typeof LIMITS, integer: boolean) =>
  numberIn(LIMITS[name].min, LIMITS[name].max, integer);

export const parse = {
  batchSize: limit('batchSize', true),
  concurrency: limit('batchConcurrency', true),
  rate(v: string): Rate {
    const t = v.trim();
    if (t === 'unlimited') return 'unlimited';
    const n = Number(t);
    const problems = NUMBER.test(t) ? rateProblems(n) : [`must be a number of messages/s or 'unlimited'`];
    if (problems.length) throw new InvalidArgumentError(problems.join('; '));
    return n;
  },
  /** set-rate: any number or 'unlimited' parses; the range check is the workflow validator's own. */
  rateOrUnlimited(v: string): Rate {
    const t = v.trim();
    if (t === 'unlimited') return 'unlimited';
    const n = Number(t);
    if (!NUMBER.test(t) || !Number.isFinite(n))
      throw new InvalidArgumentError(`must be a number of messages/s or 'unlimited'`);
    return n;
  },
  canary: limit('canary', true),
  autoPauseRate: limit('autoPauseFailureRate', false),
  autoPauseWindow: limit('autoPauseWindow', true),
  dbStallPause: limit('dbStallPauseSeconds', false),
  receiptDeadline: limit('deadlineSeconds', false),
  retryAfter: limit('retryAfterSeconds', false),
  filteredPauseRate: limit('filteredPauseRate', false),
  positiveInt: (max: number) => numberIn(1, max, true),
  /** Sizes and counts of the demo, the drills and the benchmarks. */
  count: (min: number, max = 100_000_000) => numberIn(min, max, true),
  amount: (min: number, max = 1e9) => numberIn(min, max, false),
  anyNumber(v: string): number {
    const n = Number(v.trim());
    if (!NUMBER.test(v.trim()) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number');
    return n;
  },
  seconds: (min: number, max: number) => numberIn(min, max, false),
  policy(v: string): ChannelPolicy {
    if (!(CHANNEL_POLICIES as readonly string[]).includes(v))
      throw new InvalidArgumentError(`must be one of ${CHANNEL_POLICIES.join(', ')}`);
    return v as ChannelPolicy;
  },
  runId(v: string): string {
    if (!RUN_ID_PATTERN.test(v))
      throw new InvalidArgumentError(
        `must be 3-63 characters: lowercase letters, digits and '-', starting with a letter or digit`,
      );
    return v;
  },
  text(what: string, max: number) {
    return (v: string): string => {
      const t = v.trim();
      if (!t) throw new InvalidArgumentError(`${what} must not be empty`);
      if (t.length > max) throw new InvalidArgumentError(`${what} must be at most ${max} characters`);
      return t;
    };
  },
  oneOf<T extends string>(values: readonly T[]) {
    return (v: string): T => {
      if (!(values as readonly string[]).includes(v))
        throw new InvalidArgumentError(`must be one of ${values.join(', ')}`);
      return v as T;
    };
  },
  /** Comma-separated values from a fixed list, e.g. "failed,unreachable". */
  listOf<T extends string>(values: readonly T[]) {
    return (v: string): T[] => {
      const items = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = items.filter((s) => !(values as readonly string[]).includes(s));
      if (items.length === 0 || bad.length)
        throw new InvalidArgumentError(`must be one or more of ${values.join(', ')} (comma-separated)`);
      return [...new Set(items)] as T[];
    };
  },
};
