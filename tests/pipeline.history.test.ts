// History stays bounded: with a tiny continue-as-new threshold the run hands over many times and
// still processes every account once. Then every recorded history replays deterministically.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { defaultPayloadConverter } from '@temporalio/common';
import type { CarriedState, RunInput } from '../workflows/api';
import type { Db } from '../db/pool';
import { startTemporal, type LocalTemporal } from '../stack/temporal';
import { PROJECT_ROOT } from '../stack';
import { startRun } from '../run-api/start-run';
import { account, insertAccounts } from './support/accounts';
import {
  freshDatabase,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';

describe('continue-as-new and replay', () => {
  let temporal: LocalTemporal;
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;

  beforeAll(async () => {
    temporal = await startTemporal({
      dbFile: path.join(PROJECT_ROOT, '.data', `test-can-${process.pid}.sqlite`),
      dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 },
    });
    ({ db } = await freshDatabase('history'));
    providers = await startProviders();
    // The cohort frozen 100 accounts per call (budget 0: one chunk per prepareRun), as 8.3M accounts are in a minute each.
    worker = await startWorker(
      providers.deps(db, { freeze: { chunk: 100, statementTimeoutMs: 10_000, budgetMs: 0 } }),
      undefined,
      temporal.address,
    );
    ({ client, close: closeClient } = await temporalClient(temporal.address));
  });

  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
    await temporal?.stop();
  });

  it('continues as new many times without losing or repeating a batch', async () => {
    await insertAccounts(
      db,
      Array.from({ length: 1500 }, (_, i) => account(i + 1)),
    );
    const { runId, handle } = await startRun(db, client, {
      runId: 'can-run-1',
      reason: 'INC-can',
      operator: 't',
      taskQueue: worker.taskQueue,
      params: { batchSize: 30, batchConcurrency: 3, resetConcurrency: 2, ratePerSecond: 'unlimited' },
    });
    const result = await handle.result();
    expect(result.continuedAsNew).toBeGreaterThanOrEqual(3);
    expect(result.counts).toMatchObject({ planned: 1500, reset: 1500, sentSms: 1500, pending: 0 });
    expect(providers.twilio.messages().length).toBe(1500);
    expect(providers.twilio.duplicates()).toEqual([]);

    // Every run of the chain is findable by the run's search attribute.
    const chain = [];
    for await (const wf of client.workflow.list({ query: `PinresetRunId = '${runId}'` })) chain.push(wf);
    expect(chain.length).toBe(result.continuedAsNew + 1);

    // Ten times the cohort (issue 12): the state carried through continue-as-new holds a notify
    // cursor and at most a page of notify ranges (two windows of batchConcurrency = 3, plus the
    // window stopped in flight), never every reset batch. While PINs are still being reset it
    // carries no notify range at all (no canary).
    const carried: CarriedState[] = [];
    for (const wf of chain) {
      const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      for (const e of history.events ?? []) {
        const payload = e.workflowExecutionContinuedAsNewEventAttributes?.input?.payloads?.[0];
        if (payload) carried.push(defaultPayloadConverter.fromPayload<RunInput>(payload).carried!);
      }
    }
    expect(carried.length).toBe(result.continuedAsNew);
    // The freeze took 15 prepareRun calls of one chunk each, and one more that found it done.
    const first = chain.sort((x, y) => x.startTime.getTime() - y.startTime.getTime())[0];
    const firstHistory = await client.workflow.getHandle(first.workflowId, first.runId).fetchHistory();
    const prepares = (firstHistory.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'prepareRun',
    );
    expect(prepares.length).toBe(16);
    for (const c of carried) {
      expect(c.notifyCursor).toEqual(expect.any(Number));
      expect(c.toNotify.length).toBeLessThanOrEqual(3 * 3);
      if (c.resetsDoneAtMs === undefined) expect(c.toNotify).toEqual([]);
    }
    // Some hand-overs happened while notifying, with the cursor part-way through the cohort.
    expect(carried.some((c) => c.resetsDoneAtMs !== undefined && c.notifyCursor! > 0 && c.notifyCursor! < 1500)).toBe(
      true,
    );
  });

  it('replays every recorded history with the current workflow code', async () => {
    const histories = client.workflow.list({ query: `TaskQueue = '${worker.taskQueue}'` }).intoHistories();
    let replayed = 0;
    for await (const r of Worker.runReplayHistories(
      { workflowBundle: { codePath: inject('workflowBundlePath') } },
      histories,
    )) {
      expect(r.error).toBeUndefined();
      replayed++;
    }
    expect(replayed).toBeGreaterThanOrEqual(4);
  });
});
