// No customer data where it must not be: a run end to end with a real worker process (its logs
// captured, at debug level), then everything Temporal holds about every workflow of the run
// (whole histories with payloads decoded, describe(): search attributes, memo, static summary
// and details, current details, the __temporal_workflow_metadata query, every failure message)
// plus the run's own records in PostgreSQL, scanned for any phone number, email address, name,
// PIN or PIN verifier of the cohort. The run includes a provider failure that fails an activity
// (so failure messages exist), permanent refusals and ambiguous sends that are reconciled.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Db } from '../db/pool';
import { startRun } from '../run-api/start-run';
import { progressQuery, resumeSignal } from '../workflows/api';
import { hashPin } from '../domain/pin';
import { account, insertAccounts, type AccountSpec } from './support/accounts';
import { freshDatabase, startProviders, temporalClient, type Providers } from './support/harness';
import { spawnWorker, type WorkerProcess } from '../stack/worker-process';
import { until } from './support/until';

const CONFIG_ERROR_PREFIX = '+1666555'; // 20003: our credentials refused -> the batch fails, the run pauses
const INVALID_PREFIX = '+1212555'; // 21211: a permanent refusal -> email fallback

interface Needle {
  accountId: number;
  kind: 'phone' | 'email' | 'name' | 'pin' | 'pin verifier';
  value: string;
}

const FIRST = ['Zoë', 'Søren', 'Łukasz', 'Siobhán', 'Thảo', 'Olamide', 'Jürgen', 'Aaliyah'];
const LAST = ['Ørstedsen', 'Núñez-Wójcik', "O'Callaghan", 'Nguyễn-Thị', 'Al-Farouqi', 'Kowalczyk'];

function cohort(): AccountSpec[] {
  return Array.from({ length: 60 }, (_, i) => {
    const id = i + 1;
    const name = id % 10 === 3 ? `王小明${id}号` : `${FIRST[id % FIRST.length]} ${LAST[id % LAST.length]}-Quux${id}`;
    const email = id % 7 === 0 ? `δοκιμή.${id}@παράδειγμα.δοκιμή` : `pat.${id}+pinreset@exposure-test.example`;
    let phone: string | null = `+1415555${String(7000 + id)}`;
    if (id === 5) phone = `${CONFIG_ERROR_PREFIX}${String(1000 + id)}`;
    if (id % 11 === 0) phone = `${INVALID_PREFIX}${String(1000 + id)}`;
    if (id % 13 === 0) phone = `(415) 555-${7000 + id}`; // unnormalized: email
    return account(id, { name, phone, email });
  });
}

/** Strings to look for: each phone in several spellings, each email, each name and its parts, PINs, verifiers. */
function needlesFor(specs: AccountSpec[], pins: Map<number, { pin: string; hash: Buffer }>): Needle[] {
  const out: Needle[] = [];
  for (const s of specs) {
    if (s.phone) {
      const digits = s.phone.replace(/\D/g, '');
      out.push({ accountId: s.id, kind: 'phone', value: s.phone });
      out.push({ accountId: s.id, kind: 'phone', value: digits });
      out.push({ accountId: s.id, kind: 'phone', value: digits.slice(-10) });
    }
    if (s.email) {
      out.push({ accountId: s.id, kind: 'email', value: s.email });
      out.push({ accountId: s.id, kind: 'email', value: s.email.split('@')[0] });
      out.push({ accountId: s.id, kind: 'email', value: encodeURIComponent(s.email) });
    }
    if (s.name) {
      out.push({ accountId: s.id, kind: 'name', value: s.name });
      for (const part of s.name.split(/[\s-]+/))
        if (part.length >= 5) out.push({ accountId: s.id, kind: 'name', value: part });
    }
    const p = pins.get(s.id)!;
    out.push({ accountId: s.id, kind: 'pin', value: p.pin });
    out.push({ accountId: s.id, kind: 'pin verifier', value: p.hash.toString('hex') });
    out.push({ accountId: s.id, kind: 'pin verifier', value: p.hash.toString('base64') });
  }
  return out;
}

/** JSON with every byte array shown as UTF-8 text and as base64 (payloads decoded for the scan). */
function flatten(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v instanceof Uint8Array || (v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data))) {
      const buf = v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(v.data as number[]);
      return `utf8:${buf.toString('utf8')} b64:${buf.toString('base64')}`;
    }
    if (typeof v === 'bigint') return v.toString();
    return v;
  });
}

function scan(haystack: string, needles: Needle[]): Array<Omit<Needle, 'value'> & { where: string }> {
  const hits: Array<Omit<Needle, 'value'> & { where: string }> = [];
  // Case-insensitive: addresses and names may be re-cased on the way.
  const lower = haystack.toLowerCase();
  for (const n of needles) {
    const i = lower.indexOf(n.value.toLowerCase());
    // Report where, not what: the context before the hit, digits masked.
    if (i >= 0)
      hits.push({
        accountId: n.accountId,
        kind: n.kind,
        where: haystack.slice(Math.max(0, i - 80), i).replace(/\d{6,}/g, '#'),
      });
  }
  return hits;
}

describe('no customer data in Temporal or in worker logs', () => {
  let db: Db;
  let dbUrl: string;
  let providers: Providers;
  let client: Client;
  let closeClient: () => Promise<void>;
  let worker: WorkerProcess;
  let runId: string;
  const specs = cohort();
  const pins = new Map<number, { pin: string; hash: Buffer }>();
  let needles: Needle[];
  const collected: Record<string, string> = {};

  beforeAll(async () => {
    ({ db, url: dbUrl } = await freshDatabase('exposure'));
    providers = await startProviders({
      twilio: {
        // Accepted, then the connection cut: the worker must reconcile (list by number) before any resend.
        rateDropAfterAccept: 0.15,
        rate5xx: 0.05,
        latencyMs: [1, 10],
        permanent: [
          { prefix: CONFIG_ERROR_PREFIX, code: 20003 },
          { prefix: INVALID_PREFIX, code: 21211 },
        ],
      },
      smtp: { rate4xx: 0.1 },
    });
    ({ client, close: closeClient } = await temporalClient());
    await insertAccounts(db, specs);
    // Real peppered scrypt verifiers (cheap parameters), so a leaked verifier would be findable.
    const pepper = randomBytes(32);
    for (const s of specs) {
      const pin = String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999));
      const v = await hashPin(pin, pepper, 'v1', { params: { N: 1024, r: 8, p: 1 } });
      pins.set(s.id, { pin, hash: v.hash });
      await db.query('UPDATE accounts SET pin_hash = $2, pin_salt = $3, pin_algo = $4 WHERE id = $1', [
        s.id,
        v.hash,
        v.salt,
        v.algo,
      ]);
    }
    needles = needlesFor(specs, pins);

    const taskQueue = `exposure-${randomBytes(4).toString('hex')}`;
    worker = spawnWorker({
      ...providers.env,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
      LOG_LEVEL: 'debug',
      SEND_CONCURRENCY: '8',
    });
    await worker.ready;

    const started = await startRun(db, client, {
      reason: 'INC-exposure',
      operator: 'secops',
      taskQueue,
      accountIds: specs.map((s) => s.id),
      // Parked (ambiguous) sends are looked up after a short hold here (minutes in production).
      params: { batchSize: 20, batchConcurrency: 1, ratePerSecond: 'unlimited', holdMs: 2_000, graceMs: 12_000 },
    });
    runId = started.runId;
    await until(
      'the run to pause on the configuration error',
      async () => {
        const p = await started.handle.query(progressQuery);
        return p.autoPaused && p.batches.inFlight === 0;
      },
      90_000,
    );
    providers.twilio.setFaults({ permanent: [{ prefix: INVALID_PREFIX, code: 21211 }] });
    await started.handle.signal(resumeSignal);
    const result = await started.handle.result();
    expect(result.counts).toMatchObject({ planned: 60, reset: 60, pending: 0 });

    // Everything Temporal has on every workflow of the run (found by its search attribute).
    for await (const info of client.workflow.list({ query: `PinresetRunId = '${runId}'` })) {
      const handle = client.workflow.getHandle(info.workflowId, info.runId);
      const described = await handle.describe();
      const history = await handle.fetchHistory();
      const metadata = await client.workflowService.queryWorkflow({
        namespace: 'default',
        execution: { workflowId: info.workflowId, runId: info.runId },
        query: { queryType: '__temporal_workflow_metadata' },
      });
      const failures = (history.events ?? []).flatMap((e) =>
        Object.values(e).flatMap((attrs) => {
          const f = (attrs as { failure?: unknown } | null)?.failure;
          return f ? [f] : [];
        }),
      );
      collected[`${info.workflowId}/${info.runId}`] = flatten({
        info,
        described: { ...described, raw: described.raw },
        staticSummary: await described.staticSummary?.(),
        staticDetails: await described.staticDetails?.(),
        memo: described.memo,
        searchAttributes: described.typedSearchAttributes,
        history,
        metadata,
        failures,
      });
    }
    // The run's own records in PostgreSQL: error codes, reasons, checkpoints.
    const own = await db.query(
      `SELECT (SELECT json_agg(l) FROM (SELECT account_id, reset_state, notify_state, channel, error_code, provider_message_id FROM ledger WHERE run_id = $1) l) AS ledger,
              (SELECT json_agg(c) FROM checkpoints c WHERE run_id = $1) AS checkpoints,
              (SELECT json_agg(r) FROM runs r WHERE id = $1) AS runs`,
      [runId],
    );
    collected.postgres = flatten(own.rows[0]);
    await worker.kill('SIGTERM');
    collected.workerLogs = worker.output();
  }, 180_000);

  afterAll(async () => {
    await worker?.kill('SIGKILL');
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  it('exercised failures, refusals and ambiguous sends, and collected real content', () => {
    expect(providers.twilio.stats().dropped + providers.twilio.stats().rejected5xx).toBeGreaterThan(0);
    expect(providers.twilio.stats().listed).toBeGreaterThan(0); // reconciliation looked before resending
    expect(providers.twilio.stats().permanent).toBeGreaterThan(0);
    const temporal = Object.entries(collected)
      .filter(([k]) => k !== 'postgres' && k !== 'workerLogs')
      .map(([, v]) => v)
      .join('\n');
    expect(temporal).toContain(runId); // payloads really are decoded
    expect(temporal).toContain('activityTaskFailedEventAttributes');
    expect(temporal).toMatch(/provider rejected the configuration \(20003\)/); // the failure message is in there
    expect(collected.workerLogs).toContain('worker started');
    expect(collected.workerLogs.length).toBeGreaterThan(1_000);
    // The scanner finds what it looks for.
    const probe = needles.find((n) => n.kind === 'email' && n.value.includes('δοκιμή'))!;
    expect(scan(flatten({ x: Buffer.from(JSON.stringify({ to: probe.value })) }), needles).length).toBeGreaterThan(0);
  });

  it('Temporal holds no phone number, email, name, PIN or verifier of the cohort', () => {
    for (const [where, text] of Object.entries(collected)) {
      if (where === 'postgres' || where === 'workerLogs') continue;
      expect(scan(text, needles), where).toEqual([]);
    }
  });

  it('the worker logs hold none either (debug level)', () => {
    expect(scan(collected.workerLogs, needles)).toEqual([]);
  });

  it("the run's own records (error codes, reasons, checkpoints) hold none either", () => {
    expect(scan(collected.postgres, needles)).toEqual([]);
  });
});
