import { createHash } from 'node:crypto';
import { activityInfo, Context, heartbeat } from '@temporalio/activity';
import pLimit from 'p-limit';
import { claimNotifyChunk } from '../db/sql/claim-notify-chunk';
import { readCounts } from '../db/sql/read-counts';
import { recordOutcomes } from '../db/sql/record-outcomes';
import { messageRef } from '../domain/templates';
import type { ChannelPolicy, Counts } from '../domain/types';
import { systemClock, type ActivityDeps } from './deps';
import { notifyAccount } from './notify-account';
import { SendGate } from './send-gate';

export interface NotifyBatchInput {
  runId: string;
  first: number;
  last: number;
  policy: ChannelPolicy;
}

/** Heartbeat details: every account up to `cursor` has its outcome recorded. */
export interface NotifyProgress {
  cursor: number;
}

/** Accounts claimed and recorded together: two statements per chunk instead of two per account. */
const CHUNK = 250;
/**
 * Heartbeat this often while alive, whatever the sends are doing: a chunk slowed by throttling
 * must not look like a dead worker, or a second attempt would start beside the first.
 */
const HEARTBEAT_EVERY_MS = 2_000;

export function makeNotifyBatch(deps: ActivityDeps) {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const onSend = deps.onSend ?? (() => undefined);
  // Shared by every notify activity on this worker: the worker's total sends in flight.
  const sendLimit = pLimit(deps.sendConcurrency ?? 48);
  const gates = new Map<string, SendGate>();
  const gateFor = (runId: string) => {
    let gate = gates.get(runId);
    if (!gate) gates.set(runId, (gate = new SendGate(deps.db, runId, clock)));
    return gate;
  };

  return async function notifyBatch(input: NotifyBatchInput): Promise<Counts> {
    const { runId, first, last, policy } = input;
    const resumed = activityInfo().heartbeatDetails as NotifyProgress | undefined;
    let cursor = resumed?.cursor ?? first - 1;
    const ctx = {
      runId, policy, sms: deps.sms, email: deps.email, gate: gateFor(runId), clock, message: deps.message, random, onSend,
      ref: (accountId: number) => messageRef(runId, accountId, (s) => createHash('sha256').update(s).digest()),
    };
    const signal = Context.current().cancellationSignal;
    const beat = setInterval(() => heartbeat({ cursor } satisfies NotifyProgress), HEARTBEAT_EVERY_MS);
    try {
      for (;;) {
        const rows = await claimNotifyChunk(deps.db, runId, cursor, last, CHUNK);
        if (rows.length === 0) break;
        const outcomes = await Promise.all(rows.map((row) => sendLimit(() => notifyAccount(ctx, row, signal))));
        await recordOutcomes(deps.db, runId, outcomes);
        cursor = rows[rows.length - 1].accountId;
        heartbeat({ cursor } satisfies NotifyProgress);
      }
    } finally {
      clearInterval(beat);
    }
    return readCounts(deps.db, runId, { first, last });
  };
}
