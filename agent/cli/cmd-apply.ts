import { displayImage } from '../core/image-ref.js';
import { reconcileOnce } from '../reconcile/reconcile.js';
import { acquireStateLock } from '../state/lock.js';
import { planCommand } from './cmd-plan.js';
import { EXIT, ExitError } from './exit-codes.js';
import { formatIssues, table } from './format.js';
import type { Runtime } from './runtime.js';
import { wireNotifications } from './notifications.js';

/** `agent apply`: one reconcile, then exit. `--dry-run` prints the plan instead. */
export async function applyCommand(rt: Runtime, opts: { dryRun?: boolean; json?: boolean; now?: string[] | boolean }, out: (s: string) => void, signals: { signal: AbortSignal; txSignal: AbortSignal }): Promise<void> {
  if (opts.dryRun) return planCommand(rt, { json: opts.json }, out);
  await rt.store.init();
  const lock = await acquireStateLock(rt.config.stateDir);
  try {
    const ctx = await rt.reconcileContext();
    // --now: a person applies updates that would wait for their maintenance window.
    if (opts.now) ctx.ignoreWindows = new Set(Array.isArray(opts.now) && opts.now.length > 0 ? opts.now : ['*']);
    await wireNotifications(rt);
    const report = await reconcileOnce(ctx, signals);
    rt.hooks.onReconcile?.(report);
    await rt.hooks.flush?.();
    if (opts.json) {
      const { desired: _desired, ...shown } = report;
      out(JSON.stringify(shown, null, 2));
    }
    else {
      if (report.issues) out(formatIssues(report.issues));
      if (report.transactions.length > 0) {
        out(table(['SERVICE', 'RESULT', 'FROM', 'TO', 'DETAIL'], report.transactions.map((t) => [t.service, t.result, t.from ? displayImage(t.from) : '-', t.to ? displayImage(t.to) : '-', t.reason ?? ''])));
      }
      out(`${report.result}: ${report.message}`);
    }
    if (report.result === 'invalid') throw new ExitError(EXIT.invalidDesiredState, 'invalid desired state: nothing was applied');
    if (report.result === 'error') throw new ExitError(report.errorClass === 'transient' ? EXIT.unavailable : EXIT.internal, report.message);
    if (report.result === 'failed') throw new ExitError(EXIT.updateFailed, 'an update did not succeed; see agent status');
    if (report.sourceError) throw new ExitError(EXIT.unavailable, `the source could not be fetched (${report.sourceError}); the last fetched commit was applied`);
  } finally {
    await lock.release();
  }
}
