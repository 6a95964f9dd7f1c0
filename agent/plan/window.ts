import { Cron } from 'croner';
import type { WindowSpec } from '../model/desired.js';

export type WindowState = { open: true; closesAt: number } | { open: false; opensAt?: number };

/**
 * Whether a maintenance window is open at `now`: open when one of its starts lies in
 * (now - duration, now]. Pure: the caller passes the time.
 */
export function windowState(w: WindowSpec, now: number): WindowState {
  const cron = new Cron(w.schedule, { timezone: w.timezone, paused: true });
  const start = cron.nextRun(new Date(now - w.durationMs))?.getTime();
  if (start !== undefined && start <= now) return { open: true, closesAt: start + w.durationMs };
  const next = start ?? cron.nextRun(new Date(now))?.getTime();
  return next === undefined ? { open: false } : { open: false, opensAt: next };
}
