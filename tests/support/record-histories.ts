// `npm run record-histories`: records workflow histories from the CURRENT workflow code into
// tests/fixtures/histories/, for tests/replay.test.ts (docs/changing-the-workflow.md). Run it at a
// release, commit the files; a later change that replays differently then fails `npm test`.
//
// What the runs go through, so the replay covers every branch a long run meets mid-deploy:
// canary then approve, pause/resume signals, a setRate update, continue-as-new (threshold 40
// events), email fallback, an unreachable account, and a cancelled run. Synthetic accounts only;
// workflow histories carry run ids, id ranges and counts, never customer data.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createPool } from '../../db/pool';
import { startStack, LOCAL_TWILIO, PROJECT_ROOT } from '../../stack';
import { createTwilioSms } from '../../providers/sms';
import { createSmtpEmail } from '../../providers/email';
import { createPinresetWorker } from '../../workers/create-worker';
import { startRun } from '../../run-api/start-run';
import {
  approveUpdate,
  cancelSignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  setRateUpdate,
} from '../../workflows/api';
import { account, insertAccounts } from './accounts';
import { FIXTURES_DIR, historyToFixture } from './history-fixtures';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const dataDir = path.join(PROJECT_ROOT, '.data', `record-histories-${process.pid}`);
  const stack = await startStack({ dataDir, temporalDynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 } });
  const db = createPool(stack.postgres!.url, 10);
  const connection = await Connection.connect({ address: stack.temporal!.address });
  const client = new Client({ connection, namespace: 'default' });
  const native = await NativeConnection.connect({ address: stack.temporal!.address });
  const email = createSmtpEmail({ url: stack.smtp!.url, from: 'Carrier Security <security@carrier.example>' });
  const taskQueue = `record-${randomUUID()}`;
  const worker = await createPinresetWorker({
    connection: native,
    namespace: 'default',
    taskQueue,
    shutdownGraceTime: '5s',
    deps: {
      db,
      email,
      sendConcurrency: 16,
      sms: createTwilioSms({ ...LOCAL_TWILIO, apiUrl: stack.twilio!.url, timeoutMs: 5_000 }),
      message: { carrierName: 'Carrier', resetUrl: 'https://carrier.example/pin', messageIdDomain: 'pinreset.test' },
    },
  });
  const running = worker.run();
  try {
    await insertAccounts(db, [
      ...Array.from({ length: 290 }, (_, i) => account(i + 1)),
      ...Array.from({ length: 8 }, (_, i) => account(291 + i, { phone: null })), // email only
      account(299, { phone: null, email: null }), // unreachable
      account(300, { smsOptOut: true }), // falls back to email
    ]);
    const runs: { name: string; runId: string }[] = [];

    // 1. Canary, approval, pause/resume, a rate change, many continue-as-new.
    const a = await startRun(db, client, {
      runId: 'fixture-full',
      reason: 'INC-fixture',
      operator: 'recorder',
      taskQueue,
      params: { batchSize: 20, batchConcurrency: 2, resetConcurrency: 2, ratePerSecond: 200, canary: 20 },
    });
    await until('the canary to wait for approval', async () => (await a.handle.query(progressQuery)).awaitingApproval);
    await a.handle.signal(pauseSignal, { reason: 'recorder pause' });
    await until('the pause', async () => (await a.handle.query(progressQuery)).paused);
    await a.handle.executeUpdate(approveUpdate, { args: [{ by: 'recorder' }] });
    await a.handle.signal(resumeSignal);
    await a.handle.executeUpdate(setRateUpdate, { args: [400] });
    await a.handle.result();
    runs.push({ name: 'full', runId: a.runId });

    // 2. Cancelled half-way.
    await db.query('UPDATE accounts SET credential_version = 1');
    const b = await startRun(db, client, {
      runId: 'fixture-cancel',
      reason: 'INC-fixture-cancel',
      operator: 'recorder',
      taskQueue,
      params: { batchSize: 20, batchConcurrency: 1, resetConcurrency: 1, ratePerSecond: 50 },
    });
    await until('some notifications', async () => (await b.handle.query(progressQuery)).counts.sentSms > 20);
    await b.handle.signal(cancelSignal, { reason: 'recorder cancel' });
    await b.handle.result();
    runs.push({ name: 'cancel', runId: b.runId });

    // HISTORY_PREFIX=r2- records a later release beside the earlier fixtures (which stay: runs of
    // every release still in flight must replay); without it the fixtures are recorded afresh.
    const prefix = process.env.HISTORY_PREFIX ?? '';
    if (prefix) {
      await mkdir(FIXTURES_DIR, { recursive: true });
      for (const f of await readdir(FIXTURES_DIR)) if (f.startsWith(prefix)) await rm(path.join(FIXTURES_DIR, f));
    } else {
      await rm(FIXTURES_DIR, { recursive: true, force: true });
      await mkdir(FIXTURES_DIR, { recursive: true });
    }
    for (const r of runs) {
      let n = 0;
      // Oldest first: the chain of continue-as-new runs in order.
      const list = [];
      for await (const wf of client.workflow.list({ query: `PinresetRunId = '${r.runId}'` })) list.push(wf);
      list.sort((x, y) => x.startTime.getTime() - y.startTime.getTime());
      for (const wf of list) {
        const handle: WorkflowHandle = client.workflow.getHandle(wf.workflowId, wf.runId);
        const history = await handle.fetchHistory();
        await writeFile(
          path.join(FIXTURES_DIR, `${prefix}${r.name}-${String(n++).padStart(2, '0')}.json`),
          historyToFixture(history),
        );
      }
      console.log(`recorded ${n} histories of ${r.runId}`);
    }
    console.log(
      `fixtures: ${(await readdir(FIXTURES_DIR)).length} files in ${path.relative(PROJECT_ROOT, FIXTURES_DIR)}`,
    );
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await Promise.allSettled([native.close(), connection.close(), email.close(), db.end()]);
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
