// Human-readable progress for scripts. Counts only.
import type { Progress } from '../workflows/api';

const fmt = (n: number) => n.toLocaleString('en-US');

export function progressBar(done: number, total: number, width = 30): string {
  const share = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(share * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(share * 100).toFixed(1).padStart(5)}%`;
}

export function formatProgressLine(p: Progress, nowMs: number): string {
  const c = p.counts;
  const settled = c.planned - c.pending;
  const elapsedS = Math.max(1, (nowMs - p.startedAtMs - (p.pausedMs ?? 0)) / 1000);
  const rate = settled / elapsedS;
  const etaS = rate > 0 ? Math.round(c.pending / rate) : undefined;
  const state = p.cancelRequested ? 'cancelling' : p.paused ? `paused (${p.pauseReason ?? ''})` : p.phase;
  return [
    `${progressBar(settled, c.planned)} ${state}`,
    `reset ${fmt(c.reset)}/${fmt(c.planned)}`,
    `sms ${fmt(c.sentSms)} email ${fmt(c.sentEmail)} (fallback ${fmt(c.fellBack)})`,
    `unreachable ${fmt(c.unreachable)} failed ${fmt(c.failed)} pending ${fmt(c.pending)}`,
    `${fmt(Math.round(rate))}/s${etaS !== undefined ? ` ETA ${etaS}s` : ''}`,
  ].join(' | ');
}
