import type { Db } from '../db/pool';
import type { EmailSender, SmsSender } from '../domain/types';
import type { MessageConfig } from '../config';
import type { GateSenders } from './send-gate';

export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** What activities need from the outside world; tests wire real or local servers. */
export interface ActivityDeps {
  db: Db;
  sms: SmsSender;
  email: EmailSender;
  clock?: Clock;
  message: MessageConfig;
  /** Sends in flight on this worker, across all its notify activities. */
  sendConcurrency?: number;
  /** The cohort freeze: accounts per chunk and each chunk's statement timeout (FREEZE_CHUNK, FREEZE_STATEMENT_TIMEOUT_MS). */
  freeze?: { chunk: number; statementTimeoutMs: number; budgetMs?: number };
  /** Observes each provider call (metrics); must not throw. */
  onSend?: (event: SendEvent) => void;
  random?: () => number;
  /** Send budgets: the SMS sender and email relay keys and their default rates (activities/send-gate.ts). */
  senders?: GateSenders;
  /** PUBLIC_CALLBACK_URL: when set, every SMS asks for status callbacks there (with its run and ref),
   *  and runs follow up on delivery receipts. */
  statusCallbackBase?: string;
}

export interface SendEvent {
  channel: 'sms' | 'email';
  result: 'ok' | 'permanent' | 'rate_limited' | 'transient' | 'ambiguous' | 'reconciled';
  code?: string;
  latencyMs: number;
}
