// Tells a worker's send path of a pause or cancel the moment it is recorded, instead of at the
// next lease renewal (up to a second later): one LISTEN connection per pool, on the channel that
// recordRunControl notifies in the same statement that writes runs.status. Only a hint: the
// listener makes the lease renew at once, and the renewal (which reads runs.status) decides. If
// the connection is down, the 1-s renewal still stops sending, so nothing depends on it.
import pg from 'pg';
import type { Db } from '../db/pool';
import { RUN_CONTROL_CHANNEL } from '../db/sql/record-run-control';

/** How long the connection stays open after its last subscriber leaves (batches follow each other). */
const LINGER_MS = 2_000;
/** Wait before trying again after the connection failed. */
const RETRY_MS = 2_000;

type Listener = () => void;

class RunControlListener {
  private readonly byRun = new Map<string, Set<Listener>>();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly connectionString: string) {}

  /** Calls `onControl` whenever the run's control state is written; returns the unsubscribe. */
  subscribe(runId: string, onControl: Listener): () => void {
    let set = this.byRun.get(runId);
    if (!set) this.byRun.set(runId, (set = new Set()));
    set.add(onControl);
    clearTimeout(this.closeTimer);
    this.ensureConnected();
    return () => {
      set!.delete(onControl);
      if (set!.size === 0) this.byRun.delete(runId);
      if (this.byRun.size === 0) this.closeSoon();
    };
  }

  private ensureConnected(): void {
    if (this.client || this.connecting || this.retryTimer) return;
    const client = new pg.Client({ connectionString: this.connectionString, application_name: 'pinreset-run-control' });
    const drop = () => {
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
    };
    client.on('error', () => {
      drop();
      this.retryLater();
    });
    client.on('notification', (msg) => {
      for (const fn of this.byRun.get(msg.payload ?? '') ?? []) fn();
    });
    this.connecting = (async () => {
      try {
        await client.connect();
        await client.query(`LISTEN ${RUN_CONTROL_CHANNEL}`);
        this.client = client;
        if (this.byRun.size === 0) this.closeSoon();
      } catch {
        drop();
        this.retryLater();
      } finally {
        this.connecting = undefined;
      }
    })();
  }

  private retryLater(): void {
    if (this.retryTimer || this.byRun.size === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.byRun.size > 0) this.ensureConnected();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  private closeSoon(): void {
    clearTimeout(this.closeTimer);
    this.closeTimer = setTimeout(() => {
      if (this.byRun.size > 0) return;
      const c = this.client;
      this.client = undefined;
      c?.end().catch(() => undefined);
    }, LINGER_MS);
  }
}

const listeners = new WeakMap<Db, RunControlListener | null>();

/** The listener for this pool (none when the pool was not made from a connection string). */
export function runControlListener(db: Db): RunControlListener | undefined {
  let l = listeners.get(db);
  if (l === undefined) {
    const url = (db as { options?: { connectionString?: string } }).options?.connectionString;
    l = url ? new RunControlListener(url) : null;
    listeners.set(db, l);
  }
  return l ?? undefined;
}
