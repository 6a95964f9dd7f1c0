import type { AgentState, Condition, ConditionReason, ConditionType } from '../model/agent-state.js';
import type { Plan } from '../model/plan.js';

export interface ConditionInputs {
  state: AgentState;
  /** The plan after this reconcile's changes: what is still pending. */
  pending?: Plan;
  /** Set when the reconcile could not run at all. */
  blocked?: { reason: ConditionReason; message: string };
  now: string;
}

/**
 * Typed conditions, as Flux reports them: Ready, Reconciling, Degraded, Stalled. A rolled-back
 * update makes the stack Degraded and not Ready; it is never reported as a success.
 */
export function computeConditions(input: ConditionInputs): Condition[] {
  const { state, pending, blocked, now } = input;
  const conds: Omit<Condition, 'lastTransitionTime'>[] = [];
  const held = Object.entries(state.services).filter(([, s]) => s.failed);
  const rollbackFailed = Object.entries(state.services).filter(([, s]) => s.lastTransaction?.result === 'rollback-failed');
  const notRunning = pending?.steps.filter((s) => !s.held && (s.action === 'create' || (s.action === 'update' && s.reasons.some((r) => r.startsWith('container '))))) ?? [];
  const waiting = Object.entries(state.services).filter(([, s]) => s.waiting);

  if (state.invalid?.kind === 'signature') {
    conds.push({ type: 'Stalled', status: 'True', reason: 'SignatureRefused', message: `commit ${state.invalid.revision.slice(0, 12)}: ${state.invalid.issues[0]?.message ?? 'signature refused'}` });
  } else if (state.invalid) {
    const errors = state.invalid.issues.filter((i) => i.severity !== 'warning');
    const first = errors[0];
    const msg = `desired state ${state.invalid.revision} is invalid (${errors.length} error${errors.length === 1 ? '' : 's'})${first ? `: ${first.file}:${first.line}: ${first.message}` : ''}`;
    conds.push({ type: 'Stalled', status: 'True', reason: 'ValidationFailed', message: msg });
  } else {
    conds.push({ type: 'Stalled', status: 'False', reason: 'Succeeded', message: 'desired state is valid' });
  }

  const revertRefused = Object.entries(state.services).filter(([, s]) => s.revert && (s.revert.state === 'refused' || s.revert.state === 'failed'));
  let degraded: { reason: ConditionReason; message: string } | undefined;
  if (revertRefused.length > 0) degraded = { reason: 'RevertRefused', message: revertRefused.map(([n, s]) => `${n}: held on its last good version, but the revert commit could not be pushed: ${s.revert?.reason}`).join('; ') };
  else if (rollbackFailed.length > 0) degraded = { reason: 'RollbackFailed', message: rollbackFailed.map(([n, s]) => `${n}: ${s.lastTransaction?.reason}`).join('; ') };
  else if (held.length > 0) degraded = { reason: 'UpdateFailed', message: held.map(([n, s]) => `${n}: ${s.failed?.reason}`).join('; ') };
  else if (notRunning.length > 0) degraded = { reason: 'ServiceNotRunning', message: notRunning.map((s) => `${s.service}: ${s.reasons.join(', ')}`).join('; ') };
  conds.push(degraded ? { type: 'Degraded', status: 'True', ...degraded } : { type: 'Degraded', status: 'False', reason: 'Succeeded', message: 'no failed update' });

  conds.push({ type: 'Reconciling', status: 'False', reason: 'Idle', message: 'waiting for the next change' });

  let notReady: { reason: ConditionReason; message: string } | undefined = blocked;
  if (!notReady && state.invalid) notReady = { reason: state.invalid.kind === 'signature' ? 'SignatureRefused' : 'ValidationFailed', message: 'the newest desired state was refused; nothing was applied, running services are untouched' };
  if (!notReady && degraded) notReady = degraded;
  const blocking = (state.quarantined ?? []).filter((q) => q.blocking);
  if (!notReady && blocking.length > 0) notReady = { reason: 'Quarantined', message: blocking.map((q) => `${q.service}: ${q.version} is quarantined in renovate.json; remove the rule to allow it`).join('; ') };
  if (!notReady && waiting.length > 0) notReady = { reason: 'DependencyNotReady', message: waiting.map(([n, s]) => `${n}: ${s.waiting}`).join('; ') };
  if (!notReady && pending && pending.changes > 0) notReady = { reason: 'Progressing', message: `${pending.changes} change(s) pending` };
  conds.push(notReady ? { type: 'Ready', status: 'False', ...notReady } : { type: 'Ready', status: 'True', reason: 'Succeeded', message: `applied revision ${state.lastAppliedRevision ?? state.desired?.revision ?? ''}`.trim() });

  return conds.map((c) => ({ ...c, lastTransitionTime: transitionTime(state.conditions, c.type, c.status, now) }));
}

/** Keep the previous transition time while the status does not change. */
function transitionTime(previous: Condition[], type: ConditionType, status: Condition['status'], now: string): string {
  const prev = previous.find((c) => c.type === type);
  return prev && prev.status === status ? prev.lastTransitionTime : now;
}

export function setReconciling(state: AgentState, now: string, message: string): void {
  const others = state.conditions.filter((c) => c.type !== 'Reconciling');
  state.conditions = [...others, { type: 'Reconciling', status: 'True', reason: 'Progressing', message, lastTransitionTime: now }];
}
