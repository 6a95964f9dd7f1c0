import { errorMessage } from '../core/errors.js';
import { createLoop } from '../reconcile/loop.js';
import { reconcileOnce } from '../reconcile/reconcile.js';
import { acquireStateLock } from '../state/lock.js';
import type { Runtime } from './runtime.js';

/**
 * `agent run`: reconcile at start, on every change of the source and at each resync interval,
 * until SIGTERM/SIGINT. The first signal lets the transaction in flight finish; a second one
 * cuts it short (its journal resumes it at the next start).
 */
export async function runCommand(rt: Runtime, signals: { signal: AbortSignal; txSignal: AbortSignal }): Promise<void> {
  await rt.store.init();
  const lock = await acquireStateLock(rt.config.stateDir);
  const log = rt.log;
  let stopWatching: (() => Promise<void>) | undefined;
  try {
    const ctx = await rt.reconcileContext();
    const loop = createLoop({
      intervalMs: rt.config.reconcile.intervalMs,
      jitter: rt.config.reconcile.jitter,
      minBackoffMs: 2000,
      log,
      reconcile: async (signal) => {
        // Re-read the env file each pass: a rotated secret applies without a restart.
        const fresh = { ...ctx, env: (await rt.reconcileContext()).env };
        return reconcileOnce(fresh, { signal, txSignal: signals.txSignal });
      },
      onReport: (r) => log.info({ result: r.result, revision: r.revision, transactions: r.transactions.length }, 'Reconcile finished'),
    });
    if (rt.source.watch) {
      stopWatching = await rt.source.watch(() => loop.trigger('source changed')).catch((err: unknown) => {
        log.warn({ err: errorMessage(err) }, 'Cannot watch the source; relying on the resync interval');
        return undefined;
      });
    }
    log.info({ source: rt.source.location, stateDir: rt.config.stateDir, intervalMs: rt.config.reconcile.intervalMs }, 'Agent started');
    await loop.run(signals.signal);
    log.info('Agent stopped');
  } finally {
    await stopWatching?.();
    await lock.release();
  }
}
