// A small cohort end to end on the real stack: every path a customer can take, then the same
// batch and the whole run again, which must change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { rerunBatch } from '../workflows/rerun-batch';
import { pinResetRun } from '../workflows/pin-reset-run';
import { workflowIdForRun } from '../domain/run';
import { account, insertAccounts, ledgerOf, type AccountSpec } from './support/accounts';
import {
  freshDatabase,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';

const INVALID_PREFIX = '+1212555'; // the local Twilio answers 21211 (invalid number)
const OPTED_OUT_PREFIX = '+1313555'; // 21610 (recipient replied STOP)

function cohort(): AccountSpec[] {
  const specs: AccountSpec[] = [];
  for (let id = 1; id <= 120; id++) specs.push(account(id)); // SMS
  for (let id = 121; id <= 130; id++) specs.push(account(id, { phone: null, phoneType: null })); // email
  for (let id = 131; id <= 135; id++) specs.push(account(id, { phoneType: 'landline' })); // email
  for (let id = 136; id <= 140; id++) specs.push(account(id, { smsOptOut: true, email: null })); // unreachable
  for (let id = 141; id <= 145; id++) specs.push(account(id, { phone: `${INVALID_PREFIX}${1000 + id}` })); // SMS 21211 -> email
  for (let id = 146; id <= 148; id++)
    specs.push(account(id, { phone: `${OPTED_OUT_PREFIX}${1000 + id}`, email: null })); // failed 21610
  for (let id = 149; id <= 150; id++) specs.push(account(id, { phone: 'not a number', email: 'broken@' })); // unreachable
  specs.push(account(151, { status: 'suspended' })); // exposed too: reset and notified (SMS)
  specs.push(account(152, { status: 'closed' })); // not in the cohort at all
  return specs;
}

describe('a run over a small mixed cohort', () => {
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  const runId = 'e2e-small-1';

  beforeAll(async () => {
    ({ db } = await freshDatabase('run'));
    providers = await startProviders({
      twilio: {
        permanent: [
          { prefix: INVALID_PREFIX, code: 21211 },
          { prefix: OPTED_OUT_PREFIX, code: 21610 },
        ],
      },
    });
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
    await insertAccounts(db, cohort());
  });

  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('resets every PIN once and notifies every reachable customer once, by the right channel', async () => {
    const { handle } = await startRun(db, client, {
      runId,
      reason: 'INC-2021-0815',
      operator: 'test@secops',
      taskQueue: worker.taskQueue,
      params: { batchSize: 40, batchConcurrency: 2, ratePerSecond: 'unlimited' },
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');

    const ledger = await ledgerOf(db, runId);
    expect(ledger.size).toBe(151); // 151 suspended is exposed too; 152 closed is not
    const expectState = (
      ids: number[],
      notify: string,
      channel: string | null,
      extra: Partial<Record<string, unknown>> = {},
    ) => {
      for (const id of ids) {
        const row = ledger.get(id)!;
        expect({
          id,
          reset: row.reset_state,
          notify: row.notify_state,
          channel: row.channel,
          v: row.credential_version,
          pin: row.pin_status,
          ...pick(row, extra),
        }).toEqual({ id, reset: 'reset', notify, channel, v: 2, pin: 'reset_required', ...extra });
      }
    };
    const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
    expectState([...range(1, 120), 151], 'sent', 'sms');
    expectState(range(121, 135), 'sent', 'email');
    expectState(range(136, 140), 'unreachable', null, { error_code: 'opted_out' });
    expectState(range(141, 145), 'sent', 'email', { fell_back: true, error_code: '21211' });
    expectState(range(146, 148), 'failed', 'sms', { error_code: '21610' });
    expectState(range(149, 150), 'unreachable', null);

    // The providers' own records: one SMS per SMS account, one email per email account.
    const sms = providers.twilio.countsByRecipient();
    expect(sms.size).toBe(121);
    expect([...sms.values()].every((n) => n === 1)).toBe(true);
    const mails = providers.smtp.countsByRecipient();
    expect(mails.size).toBe(20);
    expect([...mails.values()].every((n) => n === 1)).toBe(true);
    for (const id of range(1, 120)) expect(ledger.get(id)!.provider_message_id).toMatch(/^SM[0-9a-f]{32}$/);

    expect(result.counts).toMatchObject({
      planned: 151,
      reset: 151,
      skipped: 0,
      sentSms: 121,
      sentEmail: 20,
      fellBack: 5,
      unreachable: 7,
      failed: 3,
      pending: 0,
      ambiguous: 0,
    });
    expect(result.exposureWindowMs).toBeGreaterThanOrEqual(0);

    // The SMS text: one GSM-7 segment, no PIN, the reset link.
    const body = providers.twilio.messages()[0].body;
    expect(providers.twilio.messages().every((m) => m.numSegments === 1 && m.encoding === 'GSM-7')).toBe(true);
    expect(body).toContain('https://carrier.example/pin');
  });

  it('the same batch run again changes nothing and sends nothing', async () => {
    const smsBefore = providers.twilio.messages().length;
    const mailBefore = providers.smtp.messages().length;
    const out = await client.workflow.execute(rerunBatch, {
      workflowId: `${workflowIdForRun(runId)}-rerun-1-40`,
      taskQueue: worker.taskQueue,
      args: [{ runId, first: 1, last: 40, reason: 'INC-2021-0815', policy: 'sms_then_email' }],
    });
    expect(out.notify).toMatchObject({ planned: 40, reset: 40, sentSms: 40, pending: 0 });
    expect(providers.twilio.messages().length).toBe(smsBefore);
    expect(providers.smtp.messages().length).toBe(mailBefore);
    const versions = await db.query('SELECT max(credential_version) AS v FROM accounts WHERE id BETWEEN 1 AND 40');
    expect(versions.rows[0].v).toBe(2);
  });

  it('the whole run started again changes nothing and sends nothing', async () => {
    const smsBefore = providers.twilio.messages().length;
    const result = await client.workflow.execute(pinResetRun, {
      workflowId: `${workflowIdForRun(runId)}-again`,
      taskQueue: worker.taskQueue,
      args: [{ runId, reason: 'INC-2021-0815', operator: 'test@secops', params: { ...(await runParams(db, runId)) } }],
    });
    expect(result.counts).toMatchObject({ planned: 151, reset: 151, sentSms: 121, sentEmail: 20, pending: 0 });
    expect(providers.twilio.messages().length).toBe(smsBefore);
    const v = await db.query(
      "SELECT count(*)::int AS n FROM accounts WHERE credential_version <> 2 AND status <> 'closed'",
    );
    expect(v.rows[0].n).toBe(0);
  });

  it('keeps checkpoints readable without a worker', async () => {
    const cps = await db.query('SELECT seq, phase, counts FROM checkpoints WHERE run_id = $1 ORDER BY seq', [runId]);
    expect(cps.rowCount).toBeGreaterThanOrEqual(3);
    const last = cps.rows[cps.rows.length - 1];
    expect(last.phase).toBe('completed');
    expect(last.counts).toMatchObject({ planned: 151, sentSms: 121, sentEmail: 20, pending: 0 });
    const run = await db.query('SELECT status, resets_done_at IS NOT NULL AS done FROM runs WHERE id = $1', [runId]);
    expect(run.rows[0]).toEqual({ status: 'completed', done: true });
  });
});

function pick(row: object, keys: Partial<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(keys).map((k) => [k, (row as Record<string, unknown>)[k]]));
}

async function runParams(db: Db, runId: string) {
  const r = await db.query('SELECT params FROM runs WHERE id = $1', [runId]);
  return r.rows[0].params;
}
