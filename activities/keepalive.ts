// Liveness heartbeats for activities that do not track progress (resets, lifecycle steps): while
// one runs, it heartbeats every 2 s, so a workflow that schedules it with a heartbeatTimeout learns
// within seconds that its worker died (SIGKILL, OOM, lost host) and retries it elsewhere, instead
// of waiting out the whole startToCloseTimeout (5 minutes: a 5-minute stall per crash, found by
// the chaos run). Without a heartbeatTimeout the heartbeats are harmless (throttled by the SDK).
// No heartbeat at the start: most of these activities finish within the first interval, and the
// SDK sends an attempt's first heartbeat at once, a server write per reset batch for nothing
// (BENCHMARKS.md, change 8).
import { Context } from '@temporalio/activity';

const EVERY_MS = 2_000;

export async function whileAlive<T>(fn: () => Promise<T>): Promise<T> {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return fn(); // called outside an activity (unit tests, scripts)
  }
  const timer = setInterval(() => ctx.heartbeat(), EVERY_MS);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
