// --rate: rate accuracy with several workers, the rate changed mid-run; achieved rate per window.
import { setRateUpdate } from '../workflows/api';
import { fmt, freshData, loadAverage, mb, peakRssBytes as peakOf, s1 } from './support';
import { opts } from './options';
import { log, sentSoFar, stopRun, ticker, type Bench } from './harness';
import { finishPipeline, startPipeline } from './contenders';

export interface Window {
  fromS: number;
  toS: number;
  messages: number;
  rate: number;
  errorPct: number;
}

export async function rateMode(b: Bench): Promise<Record<string, unknown>> {
  const rate = opts.rate!;
  const newRate = opts.newRate ?? Math.round(rate * 1.5);
  const changeAtS = opts.changeAt ?? opts.seconds / 2;
  // Enough accounts that the run outlasts the measurement (~95% of seeded accounts get a message).
  const needed =
    Math.ceil(((rate * changeAtS + newRate * Math.max(0, opts.seconds - changeAtS)) * 1.4) / 0.95) +
    20 * opts.batchSize;
  const accounts = opts.accounts ?? needed;
  const { seedMs } = await freshData(b.db, accounts);
  log(
    `Seeded ${fmt(accounts)} accounts in ${s1(seedMs)} s; ${opts.workers} workers at ${rate} msg/s, ${newRate} msg/s from ${changeAtS} s... (load ${loadAverage()})`,
  );
  const p = await startPipeline(b, { ratePerSecond: rate });
  const stopTicker = ticker(b, 'rate', () => Math.max(...p.workers.map((w) => peakOf(w.pid) ?? 0)));
  // t0: the first message accepted by either provider.
  while (sentSoFar(b) === 0) await new Promise((r) => setTimeout(r, 20));
  const t0 = firstSendMs(b);
  const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
  await sleepUntil(t0 + changeAtS * 1000);
  const tUpdate = Date.now();
  const answer = await p.handle.executeUpdate(setRateUpdate, { args: [newRate] });
  const tUpdated = Date.now();
  await sleepUntil(t0 + opts.seconds * 1000);
  const tEnd = Date.now();
  stopTicker();
  const times = sendTimes(b).filter((t) => t < tEnd);
  const result = await stopRun(p.handle);
  const r = await finishPipeline(b, p, result, Date.now() - p.started);

  const count = (from: number, to: number) => lowerBound(times, to) - lowerBound(times, from);
  const windows = (from: number, to: number, target: number): Window[] => {
    const out: Window[] = [];
    for (let w = from; w + 10_000 <= to; w += 10_000) {
      const n = count(w, w + 10_000);
      out.push({
        fromS: s1(w - t0),
        toS: s1(w + 10_000 - t0),
        messages: n,
        rate: n / 10,
        errorPct: +((100 * (n / 10 - target)) / target).toFixed(2),
      });
    }
    return out;
  };
  const before = windows(t0 + opts.warmup * 1000, tUpdate, rate);
  const after = windows(tUpdate + opts.warmup * 1000, tEnd, newRate);
  // In force: the first 2-second window starting at t >= the update whose rate is within 3% of the
  // new rate; the time to take effect is t - (update sent).
  let effectMs: number | undefined;
  for (let t = tUpdate; t + 2000 <= tEnd; t += 10) {
    if (count(t, t + 2000) / 2 >= newRate * 0.97) {
      effectMs = t - tUpdate;
      break;
    }
  }
  const all = [...before, ...after];
  const within3 = all.length > 0 && all.every((w) => Math.abs(w.errorPct) <= 3);
  console.log(
    `\nRate accuracy: ${opts.workers} workers, ${rate} msg/s, then ${newRate} msg/s (setRate update at ${s1(tUpdate - t0)} s); 10-s windows after ${opts.warmup} s warm-up`,
  );
  console.log('  window (s from first message)   messages   rate/s   target   error');
  for (const [w, target] of [...before.map((w) => [w, rate] as const), ...after.map((w) => [w, newRate] as const)]) {
    console.log(
      `  ${`${w.fromS}-${w.toS}`.padEnd(32)}${String(w.messages).padStart(8)}${w.rate.toFixed(1).padStart(9)}${String(target).padStart(9)}${`${w.errorPct > 0 ? '+' : ''}${w.errorPct}%`.padStart(9)}`,
    );
  }
  console.log(`  every window within 3%: ${within3 ? 'yes' : 'NO'}`);
  console.log(
    `  setRate update: answered in ${tUpdated - tUpdate} ms (${JSON.stringify(answer)}); new rate in force after ${effectMs !== undefined ? `${effectMs} ms` : 'never (within the run)'} (target <= 5000 ms)`,
  );
  return {
    mode: 'rate',
    workers: opts.workers,
    accounts,
    rate,
    newRate,
    changeAtS: s1(tUpdate - t0),
    windows: { before, after },
    within3pct: within3,
    maxAbsErrorPct: Math.max(0, ...all.map((w) => Math.abs(w.errorPct))),
    updateRoundTripMs: tUpdated - tUpdate,
    effectMs: effectMs ?? null,
    effectWithin5s: effectMs !== undefined && effectMs <= 5000,
    workerPeakRssMB: mb(r.peakRssBytes),
    runStatus: result?.status ?? 'terminated',
  };
}

export function sendTimes(b: Bench): number[] {
  const t = b.stack.twilio!.messages().map((m) => m.receivedAtMs);
  for (const m of b.stack.smtp!.messages()) t.push(m.receivedAt.getTime());
  return t.sort((x, y) => x - y);
}
export function firstSendMs(b: Bench): number {
  return sendTimes(b)[0] ?? Date.now();
}
export function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
