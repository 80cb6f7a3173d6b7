// `pinreset senders list` and `pinreset senders set-rate <sender> <rate>` (cli/main.ts): the
// send budget of each sender (SMS From number or Messaging Service, email relay), shared by every
// run and worker (send_budgets, issue 11). A change applies to every run at its next slot.
import { CliContext } from '../cli/context';
import { OperationFailedError, UsageError } from '../run-api/errors';
import { listSenderBudgets, setSenderRate, type SenderBudget } from '../db/sql/send-budget';
import { MIN_RATE, type Rate } from '../domain/run';

/** Highest budget accepted, messages/s (Twilio caps an account at about 2,000/s; SMTP relays far lower). */
export const MAX_SENDER_RATE = 100_000;
/** Sender keys as the workers write them: 'sms:+15550000000', 'sms:MG...', 'email:relay.example:587'. */
const SENDER_KEY = /^(sms|email):[\x21-\x7e]{1,200}$/;

/** The budget argument: a number of messages/s in range, or the word 'unlimited'. 0 never means unlimited. */
export function parseSenderRate(v: string): Rate {
  const t = v.trim();
  if (t === 'unlimited') return 'unlimited';
  const n = Number(t);
  if (t === '' || !Number.isFinite(n))
    throw new UsageError(`rate ${JSON.stringify(v)}: must be a number of messages/s or 'unlimited'`);
  if (n === 0) {
    throw new UsageError(
      "rate 0 is not accepted: it would not mean 'unlimited' (write 'unlimited' for no ceiling); to stop sending, pause the runs",
    );
  }
  if (n < MIN_RATE)
    throw new UsageError(
      `rate ${n} is below the minimum of ${MIN_RATE} messages/s (one every ${1 / MIN_RATE} s): every send would wait minutes; to stop sending, pause the runs`,
    );
  if (n > MAX_SENDER_RATE) throw new UsageError(`rate ${n} is above the maximum of ${MAX_SENDER_RATE} messages/s`);
  return n;
}

const rateText = (r: number) => (r === Infinity ? 'unlimited' : `${r} msg/s`);

function useText(b: SenderBudget): string {
  if (b.aheadSeconds === null) return 'no schedule (unlimited)';
  if (b.aheadSeconds > 0) return `in use: slots handed out ${b.aheadSeconds.toFixed(1)} s ahead`;
  return `idle for ${(-b.aheadSeconds).toFixed(0)} s`;
}

function json(b: SenderBudget) {
  const effective = b.rate * (1 - b.penalty);
  return {
    sender: b.sender,
    rate: b.rate === Infinity ? 'unlimited' : b.rate,
    effectiveRate: effective === Infinity ? 'unlimited' : Number(effective.toFixed(3)),
    throttledShare: Number(b.penalty.toFixed(3)),
    aheadSeconds: b.aheadSeconds === null ? null : Number(b.aheadSeconds.toFixed(3)),
    updatedAt: b.updatedAt.toISOString(),
  };
}

async function withDb<T>(fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  const ctx = new CliContext(['database']);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

export async function listSenders(o: { json?: boolean }): Promise<void> {
  const rows = await withDb(async (ctx) => listSenderBudgets(await ctx.db()));
  if (o.json) {
    for (const b of rows) console.log(JSON.stringify(json(b)));
    return;
  }
  if (rows.length === 0) {
    console.log('No sender budgets yet: a sender appears with its first send (or `senders set-rate --create`).');
    return;
  }
  const lines = rows.map((b) => {
    const throttled =
      b.penalty > 0.001
        ? `, ${(100 * b.penalty).toFixed(0)}% withheld after provider throttling (now ${rateText(b.rate * (1 - b.penalty))})`
        : '';
    return [b.sender, rateText(b.rate) + throttled, useText(b)];
  });
  const w0 = Math.max(6, ...lines.map((l) => l[0].length));
  const w1 = Math.max(4, ...lines.map((l) => l[1].length));
  console.log(`${'SENDER'.padEnd(w0)}  ${'RATE'.padEnd(w1)}  USE`);
  for (const l of lines) console.log(`${l[0].padEnd(w0)}  ${l[1].padEnd(w1)}  ${l[2]}`);
}

export async function setSenderBudget(sender: string, rateArg: string, o: { create?: boolean }): Promise<void> {
  if (!SENDER_KEY.test(sender)) {
    throw new UsageError(
      `sender ${JSON.stringify(sender)}: must be a sender key as \`senders list\` shows it, e.g. sms:+15550000000, sms:MG..., email:relay.example:587`,
    );
  }
  const rate = parseSenderRate(rateArg);
  const number = rate === 'unlimited' ? Infinity : rate;
  await withDb(async (ctx) => {
    const db = await ctx.db();
    const before = (await listSenderBudgets(db)).find((b) => b.sender === sender);
    if (!before && !o.create) {
      throw new OperationFailedError(
        `unknown sender ${JSON.stringify(sender)}: no budget yet (see \`pinreset senders list\`); add --create to set one before its first send`,
      );
    }
    await setSenderRate(db, sender, number);
    console.log(
      `Budget of ${sender}: ${before ? rateText(before.rate) : 'none'} -> ${rateText(number)} (every run on this sender, from its next slot)`,
    );
  });
}
