// Worker processes for the chaos run: real `workers/main.ts` processes, as `npm run worker`
// starts them, in numbered slots. The fleet tells the kills it ordered apart from deaths it did
// not order (a worker that dies on a server restart is restarted, and reported).
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { spawnWorker } from '../stack/worker-process';

export interface WorkerExit {
  slot: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the fleet itself killed or stopped the process. */
  ordered: boolean;
  atMs: number;
  /** Last lines the process wrote (worker logs carry no customer data). */
  tail: string;
}

interface Slot {
  child: ChildProcess;
  ordered: boolean;
  ready: Promise<void>;
  exited: Promise<void>;
}

export class WorkerFleet {
  readonly exits: WorkerExit[] = [];
  readonly started: Array<{ slot: number; pid: number; atMs: number; readyMs?: number }> = [];
  private readonly slots: Array<Slot | undefined> = [];
  private stopping = false;
  private readonly log: WriteStream | undefined;

  constructor(
    private readonly env: Record<string, string>,
    opts: {
      logFile?: string;
      onUnexpectedExit?: (e: WorkerExit) => void;
      envFor?: (slot: number) => Record<string, string>;
    } = {},
  ) {
    this.log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    this.onUnexpectedExit = opts.onUnexpectedExit;
    this.envFor = opts.envFor;
  }

  /** Per-slot environment (the chaos drill routes each slot's Temporal traffic through its own proxy). */
  private readonly envFor?: (slot: number) => Record<string, string>;

  private readonly onUnexpectedExit?: (e: WorkerExit) => void;

  get size(): number {
    return this.slots.length;
  }

  alive(): number[] {
    return this.slots.flatMap((s, i) => (s && s.child.exitCode === null && s.child.signalCode === null ? [i] : []));
  }

  alivePids(): number[] {
    return this.alive().map((i) => this.slots[i]!.child.pid ?? -1);
  }

  /** Starts a process in the slot; resolves once it polls ("worker started"). */
  start(slot: number): Promise<void> {
    const t0 = Date.now();
    let pid = -1;
    let tail = '';
    const onOutput = (text: string) => {
      tail = (tail + text).slice(-4000);
      this.log?.write(
        text
          .split('\n')
          .filter(Boolean)
          .map((l) => `[w${slot}:${pid}] ${l}\n`)
          .join(''),
      );
    };
    const worker = spawnWorker({ ...this.env, ...this.envFor?.(slot) }, { onOutput });
    const child = worker.child;
    pid = child.pid ?? -1;
    const record: { slot: number; pid: number; atMs: number; readyMs?: number } = { slot, pid, atMs: t0 };
    this.started.push(record);
    const ready = worker.ready.then(() => {
      record.readyMs = Date.now() - t0;
    });
    ready.catch(() => undefined);
    const s: Slot = { child, ordered: false, ready, exited: Promise.resolve() };
    s.exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        const exit: WorkerExit = {
          slot,
          pid,
          code,
          signal,
          ordered: s.ordered,
          atMs: Date.now(),
          tail: tail.slice(-1500),
        };
        this.exits.push(exit);
        if (!s.ordered && !this.stopping) {
          this.onUnexpectedExit?.(exit);
          // Keep the fleet at strength: a replacement takes the slot (reported, not hidden).
          if (this.slots[slot] === s) void this.start(slot).catch(() => undefined);
        }
        resolve();
      }),
    );
    this.slots[slot] = s;
    return ready;
  }

  /** SIGKILLs the process in the slot (if alive) and waits until it is gone. */
  async kill(slot: number): Promise<{ pid: number } | undefined> {
    const s = this.slots[slot];
    if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return undefined;
    s.ordered = true;
    s.child.kill('SIGKILL');
    await s.exited;
    return { pid: s.child.pid ?? -1 };
  }

  /**
   * Freezes the process in the slot (SIGSTOP) for `ms`, then wakes it (SIGCONT): a GC stall or a VM
   * pause, longer than the heartbeat timeout. Resolves with its pid once it runs again.
   */
  async freeze(slot: number, ms: number): Promise<{ pid: number } | undefined> {
    const s = this.slots[slot];
    if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return undefined;
    s.child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, ms));
    s.child.kill('SIGCONT');
    return { pid: s.child.pid ?? -1 };
  }

  /** Graceful stop of every process (SIGTERM, then SIGKILL after the grace time). */
  async stopAll(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map(async (s) => {
        if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
        s.ordered = true;
        const timer = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
        s.child.kill('SIGTERM');
        await s.exited;
        clearTimeout(timer);
      }),
    );
    if (this.log && !this.log.writableEnded) await new Promise<void>((resolve) => this.log!.end(resolve));
  }

  unexpectedExits(): WorkerExit[] {
    return this.exits.filter((e) => !e.ordered);
  }
}
