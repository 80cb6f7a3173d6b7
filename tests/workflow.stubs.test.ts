// The run workflow's control logic on its own: the real workflow code on the test Temporal server,
// with stub activities that record what they were asked and answer at once (no database, no
// providers). Each case runs in seconds; the end-to-end tests cover the real activities.
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Activities } from '../activities';
import { zeroDeliveryCounts } from '../domain/delivery';
import { DEFAULT_PARAMS, type RunParams } from '../domain/run';
import { zeroCounts, type Counts, type PlannedBatch } from '../domain/types';
import {
  approveUpdate,
  cancelSignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  type CarriedState,
  type RunInput,
} from '../workflows/api';
import { pinResetRun } from '../workflows/pin-reset-run';
import { until } from './support/until';

const eventually = (probe: () => unknown, what: string) =>
  until(what, async () => (await probe()) || undefined, 30_000, 50);

/** The final reconciliation's range: the whole run. */
const RECONCILE = `0-${Number.MAX_SAFE_INTEGER}`;

/** A latch a stub activity waits on. */
function latch() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

interface Calls {
  prepare: number;
  reset: string[];
  notify: string[];
  controls: { seq: number; status: string; reason?: string }[];
  stopping: number;
  statuses: string[];
}

/** Stub activities over `accounts` accounts with ids 1..accounts. */
function stubs(
  accounts: number,
  notify?: (b: { first: number; last: number }, calls: Calls) => Promise<Partial<Counts>>,
) {
  const calls: Calls = { prepare: 0, reset: [], notify: [], controls: [], stopping: 0, statuses: [] };
  const totals = zeroCounts();
  const activities: Partial<Activities> = {
    prepareRun: async () => {
      calls.prepare++;
      return { planned: accounts };
    },
    planBatches: async ({ after, batchSize, max }) => {
      const out: PlannedBatch[] = [];
      for (let a = after; out.length < max && a < accounts; a += batchSize) {
        const last = Math.min(a + batchSize, accounts);
        out.push({ first: a + 1, last, size: last - a });
      }
      return out;
    },
    resetBatch: async ({ first, last }) => {
      calls.reset.push(`${first}-${last}`);
      totals.reset += last - first + 1;
      return { ...zeroCounts(), reset: last - first + 1 };
    },
    notifyBatch: async (input) => {
      calls.notify.push(`${input.first}-${input.last}`);
      const c = {
        ...zeroCounts(),
        ...(notify ? await notify(input, calls) : { sentSms: input.last - input.first + 1 }),
      };
      totals.sentSms += c.sentSms;
      totals.failed += c.failed;
      return c;
    },
    markResetsDone: async () => ({ exposureWindowMs: 1 }),
    checkpointProgress: async () => ({
      counts: zeroCounts(),
      inFlight: 0,
      sentInWindow: 0,
      windowS: 60,
      readAtMs: 0,
      topErrors: [],
    }),
    recordRunControl: async ({ seq, status, reason }) => {
      calls.controls.push({ seq, status, reason });
    },
    recordApproval: async ({ by }) => ({ by, atMs: 1 }),
    setSendRate: async () => undefined,
    markRunStopping: async () => {
      calls.stopping++;
    },
    setRunStatus: async ({ status }) => {
      calls.statuses.push(status);
    },
    readRunCounts: async () => ({ ...totals, planned: accounts }),
    followUpDeliveries: async ({ sendsDone }) => ({
      enabled: false,
      counts: zeroDeliveryCounts(),
      open: 0,
      done: sendsDone,
      actions: { fellBack: 0, unreachable: 0, retried: 0, unknown: 0, adopted: 0 },
    }),
  };
  return { calls, activities };
}

describe('the run workflow with stub activities', () => {
  let connection: NativeConnection;
  let clientConnection: Connection;
  let client: Client;
  const running: { worker: Worker; done: Promise<void> }[] = [];

  beforeAll(async () => {
    connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    clientConnection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection: clientConnection, namespace: 'default' });
  });
  afterAll(async () => {
    for (const r of running) r.worker.shutdown();
    await Promise.all(running.map((r) => r.done));
    await clientConnection?.close();
    await connection?.close();
  });

  async function start(activities: Partial<Activities>, params: Partial<RunParams>, carried?: CarriedState) {
    const taskQueue = `stubs-${randomUUID()}`;
    const worker = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue,
      activities,
      workflowBundle: { codePath: inject('workflowBundlePath') },
    });
    running.push({ worker, done: worker.run() });
    const runId = `stub-${randomUUID().slice(0, 8)}`;
    const input: RunInput = {
      runId,
      reason: 'INC-STUB',
      operator: 'test',
      params: { ...DEFAULT_PARAMS, ...params },
      carried,
    };
    return client.workflow.start(pinResetRun, { args: [input], taskQueue, workflowId: `pinreset-${runId}` });
  }

  it('canary: every PIN reset at once, only the canary notified, approve refused until it is done', async () => {
    const canaryGate = latch();
    const { calls, activities } = stubs(50, async (b) => {
      if (b.last <= 5) await canaryGate.opened;
      return { sentSms: b.last - b.first + 1 };
    });
    const handle = await start(activities, { canary: 5, batchSize: 10 });
    await eventually(
      () => calls.notify.length === 1 && calls.reset.length === 6,
      'canary dispatched, every batch reset',
    );
    expect(calls.notify).toEqual(['1-5']);
    await expect(handle.executeUpdate(approveUpdate, { args: [{ by: 'early' }] })).rejects.toThrow(
      WorkflowUpdateFailedError,
    );
    canaryGate.open();
    await eventually(async () => (await handle.query(progressQuery)).awaitingApproval, 'awaiting approval');
    expect(calls.notify).toEqual(['1-5']); // nothing beyond the canary without approval
    const first = await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
    const second = await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    expect([first.by, first.already, second.by, second.already]).toEqual(['alice', false, 'alice', true]);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    // The final reconciliation of parked rows covers the whole run (0..MAX).
    expect(calls.notify.slice(1).sort()).toEqual([RECONCILE, '6-15', '16-25', '26-35', '36-45', '46-50'].sort());
  });

  it('auto-pause: a failing batch pauses the run with its figures; resume goes on', async () => {
    let failing = true;
    const { calls, activities } = stubs(40, async (b) => {
      const n = b.last - b.first + 1;
      return failing ? { sentSms: 1, failed: n - 1 } : { sentSms: n };
    });
    const handle = await start(activities, {
      batchSize: 10,
      batchConcurrency: 1,
      autoPauseFailureRate: 0.2,
      autoPauseWindow: 5,
    });
    await eventually(async () => (await handle.query(progressQuery)).autoPaused, 'auto-paused');
    const p = await handle.query(progressQuery);
    expect(p.pauseReason).toMatch(/auto-paused: 90\.0% of the last 10 notification attempts failed/);
    expect(p.autoPause).toMatchObject({ attempts: 10, failed: 9 });
    expect(calls.notify).toContain(`${p.autoPause!.batch!.first}-${p.autoPause!.batch!.last}`); // the batch that tripped it
    expect(calls.controls.map((c) => c.status)).toEqual(['paused']);
    const dispatched = calls.notify.length;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(calls.notify.length).toBe(dispatched); // nothing new while paused
    failing = false;
    await handle.signal(resumeSignal);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(calls.controls.map((c) => c.status)).toEqual(['paused', 'running']);
    expect(new Set(calls.notify)).toEqual(new Set(['1-10', '11-20', '21-30', '31-40', RECONCILE]));
  });

  it('cancel mid-window: the batches in flight finish, nothing new starts, the run ends cancelled', async () => {
    const gate = latch();
    const { calls, activities } = stubs(100, async (b) => {
      await gate.opened;
      return { sentSms: b.last - b.first + 1 };
    });
    const handle = await start(activities, { batchSize: 10, batchConcurrency: 2 });
    await eventually(() => calls.notify.length === 2, 'two notify batches in flight');
    await handle.signal(cancelSignal, { reason: 'wrong cohort' });
    await eventually(() => calls.controls.some((c) => c.status === 'cancelling'), 'cancel recorded');
    gate.open();
    const result = await handle.result();
    expect(result.status).toBe('cancelled');
    expect(calls.notify).toHaveLength(2);
    expect(calls.stopping).toBe(1);
    expect(calls.statuses).toEqual(['cancelled']);
    expect(calls.controls).toEqual([{ seq: 1, status: 'cancelling', reason: 'wrong cohort' }]);
  });

  it('pause and resume are recorded in order, and the run resumes where it stopped', async () => {
    let gate = latch();
    const { calls, activities } = stubs(30, async (b) => {
      await gate.opened;
      return { sentSms: b.last - b.first + 1 };
    });
    const handle = await start(activities, { batchSize: 10, batchConcurrency: 1 });
    await eventually(() => calls.notify.length === 1, 'first batch in flight');
    await handle.signal(pauseSignal, { reason: 'looking' });
    await handle.signal(pauseSignal, { reason: 'still looking' });
    await handle.signal(resumeSignal);
    await handle.signal(pauseSignal, { reason: 'again' });
    await eventually(() => calls.controls.length === 4, 'four controls recorded');
    gate.open();
    await eventually(async () => (await handle.query(progressQuery)).batches.notified === 1, 'first batch done');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(calls.notify).toEqual(['1-10']); // paused: nothing new
    gate = latch();
    gate.open();
    await handle.signal(resumeSignal);
    await handle.signal(resumeSignal); // nothing to resume: changes nothing
    expect((await handle.result()).status).toBe('completed');
    expect(calls.controls.map((c) => [c.seq, c.status])).toEqual([
      [1, 'paused'],
      [2, 'paused'],
      [3, 'running'],
      [4, 'paused'],
      [5, 'running'],
    ]);
    // Resets finish in any order, so the batches after the first may be notified in any order.
    expect(calls.notify[0]).toBe('1-10');
    expect(calls.notify.slice(1).sort()).toEqual(['11-20', '21-30', RECONCILE].sort());
  });

  it('continue-as-new hand-off: a carried state goes on where it was, without preparing again', async () => {
    const { calls, activities } = stubs(30, undefined);
    const carried: CarriedState = {
      planned: 30,
      planCursor: 30,
      planningDone: true,
      toReset: [],
      toNotify: [{ first: 21, last: 30 }],
      batchesPlanned: 3,
      batchesReset: 3,
      batchesNotified: 2,
      counts: { ...zeroCounts(), planned: 30, reset: 30, sentSms: 20 },
      paused: false,
      autoPaused: false,
      canary: 'none',
      recent: [],
      ratePerSecond: 100,
      startedAtMs: Date.now() - 60_000,
      pausedTotalMs: 0,
      resetsDoneAtMs: Date.now() - 30_000,
      exposureWindowMs: 30_000,
      checkpointSeq: 7,
      continuedAsNew: 1,
      parkedSettled: false,
    };
    const handle = await start(activities, { batchSize: 10 }, carried);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(calls.prepare).toBe(0);
    expect(calls.reset).toEqual([]);
    expect(calls.notify).toEqual(['21-30', RECONCILE]); // the last batch, then the final reconciliation
    expect(result.continuedAsNew).toBe(1);
    expect(result.exposureWindowMs).toBe(30_000);
  });
}, 120_000);
