// The benchmark's baseline: the same work as a run, as one plain, non-durable Node process. Same
// SQL functions (materialize, plan, reset, claim, record), same providers (providers/sms.ts,
// providers/email.ts), same channel choice (domain/channel.ts) and same message texts, with
// p-limit for concurrency and no Temporal, no rate gate, no retries, no reconciliation, no
// heartbeats. What it cannot do: survive a crash, pause, change rate, or be observed.
//
// Started by bench/main.ts as a child process (so its peak RSS is its own), configured by the
// worker's environment (config/index.ts). Prints one line of JSON on stdout at the end.
//   node --import tsx bench/naive-baseline.ts --run-id bench-base-1 [--batch-size 1000] ...
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import pLimit from 'p-limit';
import { loadConfig } from '../config';
import { createPool, type Db } from '../db/pool';
import { createRun } from '../db/sql/create-run';
import { setRunStatus } from '../db/sql/set-run-status';
import { materializeActiveCohort } from '../db/sql/materialize-active-cohort';
import { planBatches, type PlannedBatch } from '../db/sql/plan-batches';
import { resetBatch } from '../db/sql/reset-batch';
import { markResetsDone } from '../db/sql/mark-resets-done';
import { claimNotifyChunk, type ClaimedRow } from '../db/sql/claim-notify-chunk';
import { recordOutcomes } from '../db/sql/record-outcomes';
import { readCounts } from '../db/sql/read-counts';
import { chooseChannel } from '../domain/channel';
import type { Outcome } from '../domain/outcome';
import { DEFAULT_PARAMS, type RunParams } from '../domain/run';
import { emailMessageId, emailSubject, emailText, smsText } from '../domain/templates';
import type { ChannelPolicy, EmailSender, SmsSender } from '../domain/types';
import type { MessageConfig } from '../config';
import { createTwilioSms } from '../providers/sms';
import { createSmtpEmail } from '../providers/email';

export interface BaselineResult {
  runId: string;
  planned: number;
  reset: number;
  sentSms: number;
  sentEmail: number;
  fellBack: number;
  unreachable: number;
  failed: number;
  pending: number;
  /** From the first SQL statement of the run to the last outcome recorded. */
  wallMs: number;
  /** runs.resets_done_at - runs.started_at. */
  exposureWindowMs: number;
  /** process.resourceUsage().maxRSS, in bytes. */
  maxRssBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

const CHUNK = 250;
const PLAN_PAGE = 200;

interface Ctx {
  runId: string;
  policy: ChannelPolicy;
  sms: SmsSender;
  email: EmailSender;
  message: MessageConfig;
}

// The baseline derives its own reference (16 hex digits), as a plain script would.
const ref = (runId: string, accountId: number) =>
  createHash('sha256').update(`${runId}:${accountId}`).digest('hex').slice(0, 16).toUpperCase();

async function sendEmail(ctx: Ctx, row: ClaimedRow, r: string, fellBack: boolean, smsCode?: string): Promise<Outcome> {
  const messageId = emailMessageId(ctx.runId, row.accountId, ctx.message.messageIdDomain);
  try {
    await ctx.email.send({
      to: row.email!,
      messageId,
      subject: emailSubject(ctx.message),
      text: emailText(ctx.message, r),
    });
    return { accountId: row.accountId, state: 'sent', channel: 'email', fellBack, messageId, errorCode: smsCode };
  } catch (err) {
    return {
      accountId: row.accountId,
      state: 'failed',
      channel: 'email',
      fellBack,
      errorCode: ctx.email.classify(err).code,
    };
  }
}

async function notifyOne(ctx: Ctx, row: ClaimedRow): Promise<Outcome> {
  const base = { accountId: row.accountId, fellBack: false };
  if (row.status === null) return { ...base, state: 'skipped', errorCode: 'account_deleted' };
  if (row.status === 'closed' || row.status === 'deleted')
    return { ...base, state: 'skipped', errorCode: `account_${row.status}` };
  const choice = chooseChannel(row, ctx.policy);
  if ('unreachable' in choice) return { ...base, state: 'unreachable', errorCode: choice.unreachable };
  const r = ref(ctx.runId, row.accountId);
  if (choice.channel === 'email') return sendEmail(ctx, row, r, false);
  try {
    const sent = await ctx.sms.send({ to: row.phone!, body: smsText(ctx.message, r) });
    return { ...base, state: 'sent', channel: 'sms', messageId: sent.sid };
  } catch (err) {
    const f = ctx.sms.classify(err);
    if (f.kind !== 'permanent') return { ...base, state: 'failed', channel: 'sms', errorCode: f.code };
    const fallback = chooseChannel(row, ctx.policy, true);
    if ('unreachable' in fallback) return { ...base, state: 'failed', channel: 'sms', errorCode: f.code };
    return sendEmail(ctx, row, r, true, f.code);
  }
}

export async function runBaseline(opts: {
  db: Db;
  sms: SmsSender;
  email: EmailSender;
  message: MessageConfig;
  runId: string;
  params: RunParams;
  sendConcurrency: number;
}): Promise<Omit<BaselineResult, 'maxRssBytes' | 'cpuUserMs' | 'cpuSystemMs'>> {
  const { db, runId, params } = opts;
  const ctx: Ctx = { runId, policy: params.policy, sms: opts.sms, email: opts.email, message: opts.message };
  const started = Date.now();
  await createRun(db, { id: runId, reason: 'BENCH-BASELINE', operator: 'bench', params });
  await setRunStatus(db, runId, 'running');
  const planned = await materializeActiveCohort(db, runId);

  const batches: PlannedBatch[] = [];
  for (let after = 0; ;) {
    const page = await planBatches(db, runId, after, params.batchSize, PLAN_PAGE);
    batches.push(...page);
    if (page.length < PLAN_PAGE) break;
    after = page[page.length - 1].last;
  }

  const resetLimit = pLimit(params.resetConcurrency);
  const notifyLimit = pLimit(params.batchConcurrency);
  const sendLimit = pLimit(opts.sendConcurrency);
  const notifyBatch = async (b: PlannedBatch) => {
    for (let cursor = b.first - 1; ;) {
      const rows = await claimNotifyChunk(db, runId, cursor, b.last, CHUNK);
      if (rows.length === 0) return;
      const outcomes = await Promise.all(rows.map((row) => sendLimit(() => notifyOne(ctx, row))));
      await recordOutcomes(db, runId, outcomes);
      cursor = rows[rows.length - 1].accountId;
    }
  };
  // Like the workflow: every PIN first (the exposure window), then the notifications.
  await Promise.all(batches.map((b) => resetLimit(() => resetBatch(db, runId, b.first, b.last, 'BENCH-BASELINE'))));
  const exposureWindowMs = await markResetsDone(db, runId);
  await Promise.all(batches.map((b) => notifyLimit(() => notifyBatch(b))));
  const wallMs = Date.now() - started;
  await setRunStatus(db, runId, 'completed');

  const c = await readCounts(db, runId);
  return {
    runId,
    planned,
    reset: c.reset,
    sentSms: c.sentSms,
    sentEmail: c.sentEmail,
    fellBack: c.fellBack,
    unreachable: c.unreachable,
    failed: c.failed,
    pending: c.pending,
    wallMs,
    exposureWindowMs,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'run-id': { type: 'string' },
      'batch-size': { type: 'string', default: String(DEFAULT_PARAMS.batchSize) },
      'batch-concurrency': { type: 'string', default: String(DEFAULT_PARAMS.batchConcurrency) },
      'reset-concurrency': { type: 'string', default: String(DEFAULT_PARAMS.resetConcurrency) },
    },
  });
  if (!values['run-id']) throw new Error('--run-id is required');
  const config = loadConfig(process.env, ['database', 'sms', 'email']);
  const db = createPool(config.database.url, config.database.poolSize);
  const sms = createTwilioSms({ ...config.sms });
  const email = createSmtpEmail({ url: config.email.url, from: config.email.from });
  try {
    const params: RunParams = {
      ...DEFAULT_PARAMS,
      ratePerSecond: 'unlimited',
      batchSize: Number(values['batch-size']),
      batchConcurrency: Number(values['batch-concurrency']),
      resetConcurrency: Number(values['reset-concurrency']),
    };
    const r = await runBaseline({
      db,
      sms,
      email,
      message: config.message,
      runId: values['run-id'],
      params,
      sendConcurrency: config.worker.sendConcurrency,
    });
    const usage = process.resourceUsage();
    const result: BaselineResult = {
      ...r,
      maxRssBytes: usage.maxRSS * 1024,
      cpuUserMs: Math.round(usage.userCPUTime / 1000),
      cpuSystemMs: Math.round(usage.systemCPUTime / 1000),
    };
    process.stdout.write(`${JSON.stringify({ baseline: result })}\n`);
  } finally {
    await Promise.allSettled([email.close(), db.end()]);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(`naive baseline failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
