import { LABELS } from '../core/labels.js';
import { describeImageChange, displayImage } from '../core/image-ref.js';
import type { ContainerSpec, DesiredState, WindowSpec } from '../model/desired.js';
import { windowState } from '../schedule/window.js';
import type { ContainerInfo } from '../model/actual.js';
import type { ActualState } from '../model/actual.js';
import { describeSpecChanges } from './diff.js';
import { dependencyOrder } from './order.js';
import type { Plan, PlanStep } from '../model/plan.js';
import type { AppliedRecord, FailedRecord } from '../model/records.js';

export interface PlanInput {
  /** The time of the plan: only maintenance windows use it. */
  now?: number;
  /** Services whose maintenance window is ignored (`agent apply --now`); `'*'` for all. */
  ignoreWindows?: ReadonlySet<string>;
  desired: DesiredState;
  actual: ActualState;
  applied: Readonly<Record<string, AppliedRecord>>;
  failed: Readonly<Record<string, FailedRecord>>;
  prune: boolean;
}

/** The target of a service: the desired spec, or the last applied one while the desired spec is held. */
export interface Target {
  hash: string;
  image: string;
  spec: ContainerSpec;
}

/**
 * (desired, actual, last applied) -> ordered steps. Pure and deterministic: no I/O, no clock,
 * services in dependency order with ties by name.
 */
export function planChanges(input: PlanInput): Plan {
  const { desired, actual } = input;
  const order = dependencyOrder(Object.values(desired.services).map((s) => ({ name: s.name, dependsOn: s.dependsOn.map((d) => d.service) })));
  const steps: PlanStep[] = order.map((name) => planService(name, input));

  const orphans = Object.keys(actual.services)
    .filter((name) => !desired.services[name])
    .sort()
    .reverse();
  for (const name of orphans) {
    const current = actual.services[name]?.current;
    if (!current) continue;
    const from = { image: current.image, hash: current.labels[LABELS.specHash] ?? '' };
    steps.push(
      input.prune
        ? { service: name, action: 'remove', reasons: ['no longer in the desired state'], from, dependsOn: [] }
        : { service: name, action: 'none', reasons: ['no longer in the desired state; kept because pruning is disabled'], from, dependsOn: [] },
    );
  }
  return { stack: desired.stack, revision: desired.revision, steps, changes: steps.filter((s) => s.action !== 'none').length };
}

function planService(name: string, input: PlanInput): PlanStep {
  const d = input.desired.services[name];
  if (!d) throw new Error(`planService: unknown service ${name}`);
  const applied = input.applied[name];
  const failed = input.failed[name];
  const current = input.actual.services[name]?.current;
  const dependsOn = d.dependsOn.map((x) => x.service);
  const step: PlanStep = { service: name, action: 'none', reasons: [], dependsOn };
  if (current) step.from = { image: current.image, hash: current.labels[LABELS.specHash] ?? '' };

  let target: Target = { hash: d.hash, image: d.spec.image, spec: d.spec };
  if (d.agent.paused && d.hash !== applied?.hash) {
    if (!applied) {
      step.reasons.push('paused (x-agent.paused): not created');
      return step;
    }
    step.reasons.push('paused (x-agent.paused): keeping the last applied spec');
    target = { hash: applied.hash, image: applied.spec.image, spec: applied.spec };
  } else if (failed && failed.hash === d.hash) {
    step.held = { image: failed.image, hash: failed.hash, reason: failed.reason, at: failed.at };
    const quarantined = failed.kind === 'quarantined';
    if (!applied) {
      step.reasons.push(quarantined ? `held: ${failed.reason}` : `held: ${displayImage(failed.image)} failed (${failed.reason}); change the desired state to retry`);
      return step;
    }
    step.reasons.push(
      quarantined ? `held: ${failed.reason}; keeping the last applied spec` : `held: ${describeImageChange(applied.spec.image, failed.image).replace(/^image /, '')} failed; keeping the last applied spec`,
    );
    target = { hash: applied.hash, image: applied.spec.image, spec: applied.spec };
  } else if (applied && applied.hash !== d.hash) {
    // Outside its window an update waits; what was applied is kept, and repaired if need be.
    const deferred = windowDeferral(d.agent.window, name, input);
    if (deferred) {
      step.reasons.push(deferred.reason);
      step.deferred = deferred.until;
      target = { hash: applied.hash, image: applied.spec.image, spec: applied.spec };
    }
  }
  step.to = { image: target.image, hash: target.hash };

  if (!current) {
    step.action = 'create';
    step.reasons.push(applied ? 'container missing (removed outside the agent)' : 'new service');
    return step;
  }
  const runningHash = current.labels[LABELS.specHash];
  if (runningHash !== target.hash) {
    const deferred = windowDeferral(d.agent.window, name, input);
    if (deferred) {
      step.reasons.push(deferred.reason);
      step.deferred = deferred.until;
      return step;
    }
    step.action = 'update';
    const known = applied && applied.hash === runningHash ? applied.spec : undefined;
    if (known) step.reasons.push(...describeSpecChanges(known, target.spec));
    else step.reasons.push(`running container does not match the last applied spec${current.image !== target.image ? `; ${describeImageChange(current.image, target.image)}` : ''}`);
    if (step.reasons.length === 0) step.reasons.push('spec changed');
    return step;
  }
  const stopped = describeStopped(current);
  if (stopped) {
    step.action = 'update';
    step.reasons.push(stopped);
  } else if (step.reasons.length === 0) {
    step.reasons.push('up to date');
  }
  return step;
}

/** A reason when the container is not running and should be recreated; paused and restarting containers are left alone. */
function describeStopped(c: ContainerInfo): string | undefined {
  switch (c.status) {
    case 'exited':
    case 'dead':
      return `container ${c.status} (exit code ${c.exitCode}${c.oomKilled ? ', out of memory' : ''})`;
    case 'created':
      return 'container created but never started';
    default:
      return undefined;
  }
}

/** An update outside its service's maintenance window waits for the window (drift repair does not). */
function windowDeferral(window: WindowSpec | undefined, service: string, input: PlanInput): { reason: string; until: string } | undefined {
  if (!window || input.now === undefined || input.ignoreWindows?.has(service) || input.ignoreWindows?.has('*')) return undefined;
  const w = windowState(window, input.now);
  if (w.open) return undefined;
  const until = w.opensAt === undefined ? undefined : new Date(w.opensAt).toISOString();
  return { reason: `waiting for the maintenance window (${window.schedule} ${window.timezone}, next ${until ?? 'never'}); agent apply --now ${service} applies it at once`, until: until ?? 'never' };
}
