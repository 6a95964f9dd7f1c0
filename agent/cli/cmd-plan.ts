import { planView } from '../plan/view.js';
import { assess } from '../reconcile/assess.js';
import { EXIT, ExitError } from './exit-codes.js';
import { formatIssues, formatPlan } from './format.js';
import type { ReadOnlyRuntime } from './runtime.js';
import { tagIssues } from './tag-check.js';

/** `agent plan`: what a reconcile would do now, and why; changes nothing. */
export async function planCommand(rt: ReadOnlyRuntime, opts: { json?: boolean; detailedExitcode?: boolean }, out: (s: string) => void): Promise<void> {
  const a = await assess(rt.assessDeps, await rt.state.loadApplied(), await rt.state.load());
  if (a.kind === 'refused') {
    if (opts.json) out(JSON.stringify({ valid: false, revision: a.snapshot.revision, signatureRefused: a.reason }, null, 2));
    else out(`commit ${a.snapshot.revision}: signature refused: ${a.reason}`);
    throw new ExitError(EXIT.invalidDesiredState, 'refused commit: nothing would be applied');
  }
  if (a.kind === 'invalid') {
    if (opts.json) out(JSON.stringify({ valid: false, revision: a.snapshot.revision, issues: a.load.issues }, null, 2));
    else out(formatIssues(a.load.issues));
    throw new ExitError(EXIT.invalidDesiredState, 'invalid desired state: nothing would be applied');
  }
  // A pin that is another build than its tag: refused before anything is planned.
  const tags = await tagIssues(a.load.state, rt.config);
  const tagErrors = tags.filter((i) => i.severity !== 'warning');
  if (!opts.json && tags.length > 0) out(formatIssues(tags));
  if (tagErrors.length > 0) {
    if (opts.json) out(JSON.stringify({ valid: false, revision: a.snapshot.revision, issues: tags }, null, 2));
    throw new ExitError(EXIT.invalidDesiredState, 'a pinned digest is not what its tag names at the registry: nothing would be applied');
  }
  const pendingJournals = await rt.state.journals.list();
  if (opts.json) out(JSON.stringify({ ...planView(a.plan), interruptedTransactions: pendingJournals.map((j) => ({ service: j.service, txId: j.txId, phase: j.phase })) }, null, 2));
  else {
    if (rt.sourceOffline) out(`note: an agent process is running; this plan is against the commit it fetched last, ${a.snapshot.revision.slice(0, 12)}`);
    out(formatPlan(a.plan));
    for (const j of pendingJournals) out(`note: transaction ${j.txId} of ${j.service} was interrupted at ${j.phase}; the next apply finishes it first`);
  }
  if (opts.detailedExitcode && a.plan.changes > 0) throw new ExitError(EXIT.changesPending, '');
}
