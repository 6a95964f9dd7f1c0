import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import { retrySoon, type ReconcileReport } from '../model/report.js';

export interface LoopOptions {
  /** Periodic resync, which also repairs drift (a stopped or removed container). */
  intervalMs: number;
  /** Random extra delay, as a fraction of the interval, so that many hosts do not sync in step. */
  jitter: number;
  /** First retry delay after a transient failure; doubles up to the interval. */
  minBackoffMs: number;
  log: Logger;
  reconcile: (signal: AbortSignal) => Promise<ReconcileReport>;
  onReport?: (report: ReconcileReport) => void;
  random?: () => number;
}

/**
 * The long-running loop: one reconcile at a time; triggers that arrive meanwhile (file change,
 * webhook, timer) coalesce into one more pass. Resolves when `signal` aborts, after the pass in
 * flight has finished.
 */
export function createLoop(options: LoopOptions) {
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let pending = true;
  let failures = 0;
  const random = options.random ?? Math.random;

  const trigger = (reason: string) => {
    options.log.debug({ reason }, 'Reconcile triggered');
    pending = true;
    wake?.();
  };

  const schedule = (ms: number) => {
    clearTimeout(timer);
    // Not unref'd: with a Git source and no HTTP listener nothing else keeps `agent run` alive,
    // and Node would end it with exit code 13 (an unsettled top-level await). run() clears it.
    timer = setTimeout(() => trigger('timer'), ms);
  };

  const run = async (signal: AbortSignal) => {
    signal.addEventListener('abort', () => wake?.(), { once: true });
    while (!signal.aborted) {
      if (!pending) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      pending = false;
      let delay = options.intervalMs * (1 + options.jitter * random());
      try {
        const report = await options.reconcile(signal);
        options.onReport?.(report);
        // A pass that pushed a revert changed the source: read it back at once.
        if (report.revertsPushed) pending = true;
        if (retrySoon(report)) {
          failures++;
          delay = Math.min(delay, options.minBackoffMs * 2 ** (failures - 1));
        } else {
          failures = 0;
        }
      } catch (err) {
        failures++;
        delay = Math.min(delay, options.minBackoffMs * 2 ** (failures - 1));
        options.log.error({ err: errorMessage(err) }, 'Reconcile failed unexpectedly');
      }
      if (!signal.aborted) schedule(delay);
    }
    clearTimeout(timer);
  };

  return { run, trigger };
}
