import { displayImage } from '../core/image-ref.js';
import type { ReconcileReport } from '../model/report.js';
import { planView } from '../plan/view.js';
import { reconcileOnce } from '../reconcile/reconcile.js';
import { planCommand } from './cmd-plan.js';
import { EXIT, ExitError } from './exit-codes.js';
import { formatIssues, table } from './format.js';
import type { Runtime } from './runtime.js';
import { wireNotifications } from './notifications.js';

/** `agent apply`: one reconcile, then exit. `--dry-run` prints the plan instead. */
export async function applyCommand(rt: Runtime, opts: { dryRun?: boolean; json?: boolean; now?: string[] | boolean }, out: (s: string) => void, signals: { signal: AbortSignal; txSignal: AbortSignal }): Promise<void> {
  if (opts.dryRun) return planCommand(rt, { json: opts.json }, out);
  await rt.state.init();
  const lock = await rt.state.lockAgent();
  try {
    const deps = await rt.reconcileDeps();
    await wireNotifications(rt);
    // --now: a person applies updates that would wait for their maintenance window.
    const ignoreWindows = opts.now ? new Set(Array.isArray(opts.now) && opts.now.length > 0 ? opts.now : ['*']) : undefined;
    const report = await reconcileOnce(deps, { ...signals, ...(ignoreWindows ? { ignoreWindows } : {}) });
    rt.hooks.onReconcile?.(report);
    await rt.hooks.flush?.();
    if (opts.json) out(JSON.stringify(reportView(report), null, 2));
    else {
      if (report.issues) out(formatIssues(report.issues));
      if (report.transactions.length > 0) {
        out(table(['SERVICE', 'RESULT', 'FROM', 'TO', 'DETAIL'], report.transactions.map((t) => [t.service, t.result, t.from ? displayImage(t.from) : '-', t.to ? displayImage(t.to) : '-', t.reason ?? ''])));
      }
      out(`${report.result}: ${report.message}`);
    }
    throwForExit(report);
  } finally {
    await lock.release();
  }
}

/** The report as `--json` prints it: plans without their specs, no desired state. */
function reportView(r: ReconcileReport) {
  const { desired: _desired, plan, pending, ...rest } = r;
  return { ...rest, ...(plan ? { plan: planView(plan) } : {}), ...(pending ? { pending: planView(pending) } : {}) };
}

/**
 * The exit code says whether the host now runs what the desired state asks for (docs/cli.md):
 * a held or quarantined version is exit 4 on every apply until the desired state changes, an
 * update waiting for its window or a dependency exit 10.
 */
function throwForExit(report: ReconcileReport): void {
  if (report.result === 'invalid') throw new ExitError(EXIT.invalidDesiredState, 'invalid desired state: nothing was applied');
  if (report.result === 'error') throw new ExitError(report.blocked?.errorClass === 'transient' ? EXIT.unavailable : EXIT.internal, `${report.message}${report.blocked?.code ? ` [${report.blocked.code}]` : ''}`);
  if (report.result === 'failed') throw new ExitError(EXIT.updateFailed, 'an update did not succeed; see agent status');
  if (report.sourceError) throw new ExitError(EXIT.unavailable, `the source could not be fetched (${report.sourceError}); the last fetched commit was applied${report.sourceErrorCode ? ` [${report.sourceErrorCode}]` : ''}`);
  const steps = report.pending?.steps ?? [];
  const held = steps.filter((s) => s.held);
  if (held.length > 0) throw new ExitError(EXIT.updateFailed, `not as desired: ${held.map((s) => `${s.service} is held (${s.held?.kind === 'quarantined' ? s.held.reason : `${displayImage(s.held?.image ?? '')} failed: ${s.held?.reason}`})`).join('; ')}`);
  const waiting = steps.filter((s) => s.deferred || s.action !== 'none');
  if (waiting.length > 0) throw new ExitError(EXIT.changesPending, `not as desired yet: ${waiting.map((s) => `${s.service}: ${s.reasons.join('; ')}`).join('; ')}`);
}
