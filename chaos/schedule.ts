// The fault schedule of a chaos run: which disruption happens at which point of the run's
// progress. Pure and seeded, so a failing schedule can be replayed with the same --seed.
//
// Progress is a number in [0, 1] measured from PostgreSQL (see db/sql/chaos-checks.ts: resets
// weigh 10%, settled notifications 90%), not wall time: the same schedule lands at the same
// stage of the run on a fast or a slow machine.

export type ChaosEventKind =
  'kill-worker' | 'restart-postgres' | 'restart-temporal' | 'freeze-worker' | 'partition-worker';

export interface ChaosEvent {
  kind: ChaosEventKind;
  /** Progress at which the event fires. */
  at: number;
  /** kill-worker, freeze-worker, partition-worker: which worker slot. */
  worker?: number;
  /** kill-worker: how long the slot stays empty before a new process starts. */
  restartDelayMs?: number;
}

export interface ChaosPlanOptions {
  seed: number;
  workers: number;
  kills: number;
  postgresRestarts: number;
  temporalRestarts: number;
  /** SIGSTOP of a worker for longer than the heartbeat timeout, then SIGCONT. */
  freezes?: number;
  /** A worker cut off from Temporal (not from PostgreSQL or the providers) for a while. */
  partitions?: number;
  /** Progress window the events are spread over (default [0.03, 0.9]). */
  window?: [number, number];
  /** Longest time a killed worker's slot stays empty (default 3 s). */
  maxRestartDelayMs?: number;
}

/** mulberry32: tiny, seedable, good enough for dice. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Events spread over the window in equal slots, one random point in the middle 80% of each slot
 * (so two events never coincide and each has time to bite), with the kinds shuffled over the
 * slots: a server restart can land anywhere, between or next to worker kills.
 */
export function planChaos(o: ChaosPlanOptions): ChaosEvent[] {
  const [lo, hi] = o.window ?? [0.03, 0.9];
  if (!(lo >= 0 && hi <= 1 && lo < hi)) throw new Error('chaos window must satisfy 0 <= lo < hi <= 1');
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new Error('workers must be a positive integer');
  for (const k of ['kills', 'postgresRestarts', 'temporalRestarts', 'freezes', 'partitions'] as const) {
    const n = o[k] ?? 0;
    if (!Number.isInteger(n) || n < 0) throw new Error(`${k} must be an integer >= 0`);
  }
  const random = prng(o.seed);
  const maxDelay = o.maxRestartDelayMs ?? 3_000;
  const kinds: ChaosEventKind[] = [
    ...Array<ChaosEventKind>(o.kills).fill('kill-worker'),
    ...Array<ChaosEventKind>(o.postgresRestarts).fill('restart-postgres'),
    ...Array<ChaosEventKind>(o.temporalRestarts).fill('restart-temporal'),
    ...Array<ChaosEventKind>(o.freezes ?? 0).fill('freeze-worker'),
    ...Array<ChaosEventKind>(o.partitions ?? 0).fill('partition-worker'),
  ];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  const slot = (hi - lo) / Math.max(1, kinds.length);
  return kinds.map((kind, i) => {
    const at = lo + slot * (i + 0.1 + 0.8 * random());
    if (kind === 'freeze-worker' || kind === 'partition-worker')
      return { kind, at, worker: Math.floor(random() * o.workers) };
    if (kind !== 'kill-worker') return { kind, at };
    return { kind, at, worker: Math.floor(random() * o.workers), restartDelayMs: Math.round(random() * maxDelay) };
  });
}

export function describeEvent(e: ChaosEvent): string {
  const where = `at ${(e.at * 100).toFixed(1)}%`;
  if (e.kind === 'kill-worker') return `SIGKILL worker ${e.worker} ${where}, new process after ${e.restartDelayMs} ms`;
  if (e.kind === 'freeze-worker') return `SIGSTOP worker ${e.worker} ${where}, SIGCONT later`;
  if (e.kind === 'partition-worker') return `cut worker ${e.worker} off from Temporal ${where}, restore later`;
  return `${e.kind === 'restart-postgres' ? 'restart PostgreSQL' : 'restart the Temporal server'} ${where}`;
}
