import type { AgentState, Condition, ConditionReason, ConditionType } from '../model/agent-state.js';
import { NOT_RUNNING_CAUSES, type Plan } from '../model/plan.js';
import type { Blocked } from '../model/report.js';

export interface ConditionInputs {
  state: AgentState;
  /** What is still not as desired: the plan after the pass, or the live plan `agent status` computes. */
  pending?: Plan;
  /** Set when the pass could not run at all (the engine or the source unreachable). */
  blocked?: Blocked;
  now: string;
}

/**
 * Typed conditions, as Flux reports them: Ready, Reconciling, Degraded, Stalled. Computed from
 * typed facts only (plan causes, transaction results, blocked reasons), never from wording. A
 * rolled-back update makes the stack Degraded and not Ready; it is never reported as a success.
 */
export function computeConditions(input: ConditionInputs): Condition[] {
  const { state, pending, blocked, now } = input;
  const services = Object.entries(state.services);
  const conds: Omit<Condition, 'lastTransitionTime'>[] = [stalled(state)];

  const held = services.filter(([, s]) => s.held && s.held.kind !== 'quarantined');
  const rollbackFailed = services.filter(([, s]) => s.lastTransaction?.result === 'rollback-failed');
  const revertRefused = services.filter(([, s]) => s.revert && (s.revert.state === 'refused' || s.revert.state === 'failed'));
  const notRunning = pending?.steps.filter((s) => NOT_RUNNING_CAUSES.includes(s.cause) && !s.held) ?? [];
  let degraded: { reason: ConditionReason; message: string } | undefined;
  if (revertRefused.length > 0) degraded = { reason: 'RevertRefused', message: revertRefused.map(([n, s]) => `${n}: held on its last good version, but the revert commit could not be pushed: ${s.revert?.reason}`).join('; ') };
  else if (rollbackFailed.length > 0) degraded = { reason: 'RollbackFailed', message: rollbackFailed.map(([n, s]) => `${n}: ${s.lastTransaction?.reason}`).join('; ') };
  else if (held.length > 0) degraded = { reason: 'UpdateFailed', message: held.map(([n, s]) => `${n}: ${s.held?.reason}`).join('; ') };
  else if (notRunning.length > 0) degraded = { reason: 'ServiceNotRunning', message: notRunning.map((s) => `${s.service}: ${s.reasons.join(', ')}`).join('; ') };
  conds.push(degraded ? { type: 'Degraded', status: 'True', ...degraded } : { type: 'Degraded', status: 'False', reason: 'Succeeded', message: 'no failed update' });

  conds.push({ type: 'Reconciling', status: 'False', reason: 'Idle', message: 'waiting for the next change' });
  conds.push(ready(state, pending, blocked, degraded));
  return conds.map((c) => ({ ...c, lastTransitionTime: transitionTime(state.conditions, c.type, c.status, now) }));
}

function stalled(state: AgentState): Omit<Condition, 'lastTransitionTime'> {
  if (state.invalid?.kind === 'signature') return { type: 'Stalled', status: 'True', reason: 'SignatureRefused', message: `commit ${state.invalid.revision.slice(0, 12)}: ${state.invalid.issues[0]?.message ?? 'signature refused'}` };
  if (state.invalid) {
    const errors = state.invalid.issues.filter((i) => i.severity !== 'warning');
    const denied = errors.filter((i) => i.policy !== undefined);
    // A policy refusal is named first: the fix is in the commit, or in the operator's policy.
    const first = denied[0] ?? errors[0];
    const what = denied.length > 0 ? `refused by the operator's policy (${denied.length} violation${denied.length === 1 ? '' : 's'}${errors.length > denied.length ? `, ${errors.length - denied.length} other error${errors.length - denied.length === 1 ? '' : 's'}` : ''})` : `invalid (${errors.length} error${errors.length === 1 ? '' : 's'})`;
    return { type: 'Stalled', status: 'True', reason: denied.length > 0 ? 'PolicyDenied' : 'ValidationFailed', message: `desired state ${state.invalid.revision} is ${what}${first ? `: ${first.file}:${first.line}: ${first.message}` : ''}` };
  }
  return { type: 'Stalled', status: 'False', reason: 'Succeeded', message: 'desired state is valid' };
}

function ready(state: AgentState, pending: Plan | undefined, blocked: Blocked | undefined, degraded: { reason: ConditionReason; message: string } | undefined): Omit<Condition, 'lastTransitionTime'> {
  const notReady = (reason: ConditionReason, message: string) => ({ type: 'Ready' as const, status: 'False' as const, reason, message });
  if (blocked) return notReady(blocked.reason, blocked.message);
  if (state.invalid) return notReady(state.invalid.kind === 'signature' ? 'SignatureRefused' : state.invalid.issues.some((i) => i.policy !== undefined && i.severity !== 'warning') ? 'PolicyDenied' : 'ValidationFailed', 'the newest desired state was refused; nothing was applied, running services are untouched');
  if (degraded) return notReady(degraded.reason, degraded.message);
  const quarantined = pending ? pending.steps.filter((s) => s.held?.kind === 'quarantined') : [];
  if (quarantined.length > 0) return notReady('Quarantined', quarantined.map((s) => `${s.service}: ${s.held?.reason}; remove the rule to allow it`).join('; '));
  const changedNetworks = pending?.networks.filter((n) => n.cause === 'changed') ?? [];
  if (changedNetworks.length > 0) return notReady('NetworkChanged', changedNetworks.map((n) => `network ${n.name}: ${n.reasons.join('; ')}`).join('; '));
  // Other blocked services: a docker compose container whose data the takeover would not find.
  const stepsBlocked = pending?.steps.filter((s) => s.cause === 'blocked') ?? [];
  if (stepsBlocked.length > 0) return notReady('TakeoverBlocked', stepsBlocked.map((s) => `${s.service}: ${s.reasons.join('; ')}`).join('; '));
  const waiting = Object.entries(state.services).filter(([, s]) => s.waiting);
  if (waiting.length > 0) return notReady('DependencyNotReady', waiting.map(([n, s]) => `${n}: ${s.waiting?.message}`).join('; '));
  if (pending && pending.changes > 0) return notReady('Progressing', `${pending.changes} change(s) pending`);
  return { type: 'Ready', status: 'True', reason: 'Succeeded', message: `applied revision ${state.lastAppliedRevision ?? state.desired?.revision ?? ''}`.trim() };
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
