import { LABELS, containerName } from '../core/labels.js';
import { describeImageChange, displayImage } from '../core/image-ref.js';
import type { ActualState, ContainerInfo } from '../model/actual.js';
import type { ContainerSpec, DesiredService, DesiredState, WindowSpec } from '../model/desired.js';
import type { NetworkStep, Plan, PlanStep, StepCause, StepCurrent, StepTarget } from '../model/plan.js';
import { networkHash } from '../desired/normalize-networks.js';
import type { AppliedRecord, HeldRecord } from '../model/records.js';
import { describeSpecChanges } from './diff.js';
import { dependencyWaves } from './order.js';
import { windowState } from './window.js';

export interface PlanInput {
  /** The time of the plan: only maintenance windows use it. */
  now?: number;
  /** Services whose maintenance window is ignored (`agent apply --now`); `'*'` for all. */
  ignoreWindows?: ReadonlySet<string>;
  desired: DesiredState;
  actual: ActualState;
  applied: Readonly<Record<string, AppliedRecord>>;
  held: Readonly<Record<string, HeldRecord>>;
  prune: boolean;
}

/**
 * (desired, actual, last applied, held) -> the plan: every step with its full target, its wave
 * and its cause. Pure and deterministic: no I/O, no clock (the caller passes `now`), services
 * in dependency waves with ties by name, removals last.
 */
export function planChanges(input: PlanInput): Plan {
  const { desired, actual } = input;
  const waves = dependencyWaves(Object.values(desired.services).map((s) => ({ name: s.name, dependsOn: s.dependsOn.map((d) => d.service) })));
  const steps: PlanStep[] = waves.flatMap((names, wave) => names.map((name) => planService(desired.services[name] as DesiredService, wave, input)));

  const orphans = Object.keys(actual.services)
    .filter((name) => !desired.services[name])
    .sort()
    .reverse();
  for (const name of orphans) {
    const current = actual.services[name]?.current;
    if (!current) continue;
    const from = currentOf(current, input.applied[name]);
    steps.push(
      input.prune
        ? { service: name, action: 'remove', cause: 'orphan', reasons: ['no longer in the desired state'], wave: waves.length, from, dependsOn: [] }
        : { service: name, action: 'none', cause: 'orphan', reasons: ['no longer in the desired state; kept because pruning is disabled'], wave: waves.length, from, dependsOn: [] },
    );
  }
  recreateNamespaceSharers(steps, desired);
  const networks = planNetworks(input);
  // A service joining a network whose definition changed waits: creating it would fail, and the
  // agent does not recreate a network under running containers.
  const changed = new Map(networks.filter((n) => n.cause === 'changed').map((n) => [n.name, n]));
  for (const step of steps) {
    const on = (step.to?.spec.networks ?? []).find((a) => changed.has(a.network));
    if (!on || (step.action !== 'create' && step.action !== 'update')) continue;
    step.action = 'none';
    step.cause = 'blocked';
    step.reasons = [`network ${on.network} changed its definition: ${changed.get(on.network)?.reasons.join('; ')}`];
  }
  return { stack: desired.stack, revision: desired.revision, steps, networks, changes: steps.filter((s) => s.action !== 'none').length + networks.filter((n) => n.action !== 'none').length };
}

/**
 * A service with `network_mode: service:<x>` lives in x's network namespace: when x's container
 * is replaced, its own must be too (as Compose does), after x (the implicit dependency).
 */
function recreateNamespaceSharers(steps: PlanStep[], desired: DesiredState): void {
  // In wave order: a dependent recreated here may have dependents of its own further down.
  const replaced = new Set(steps.filter((s) => s.action === 'create' || s.action === 'update').map((s) => s.service));
  for (const step of steps) {
    if (step.action !== 'none' || !step.from || step.cause !== 'in-sync') continue;
    const mode = step.to?.spec.networkMode ?? '';
    const nameOf = (s: string) => containerName(desired.stack, s, desired.services[s]?.spec.containerName);
    const shared = mode.startsWith('container:') ? [...replaced].find((s) => nameOf(s) === mode.slice('container:'.length)) : undefined;
    // Compose's depends_on `restart: true`: restarted when its dependency is.
    const restarted = step.to?.dependsOn.find((d) => d.restart === true && replaced.has(d.service));
    if (!shared && !restarted) continue;
    step.action = 'update';
    step.cause = 'changed';
    step.reasons = [shared ? `shares the network namespace of ${nameOf(shared)}, which is recreated` : `depends on ${restarted?.service} with restart: true, which is recreated`];
    replaced.add(step.service);
  }
}

/** The stack's networks: those the desired state needs, and the agent's own that it no longer does. */
function planNetworks(input: PlanInput): NetworkStep[] {
  const observed = input.actual.networks ?? {};
  const wanted = Object.values(input.desired.networks);
  const steps: NetworkStep[] = wanted.map((n) => {
    if (n.external) return { name: n.name, action: 'none', cause: 'external', reasons: ['external: attached to, never created or changed'] };
    const seen = observed[n.name];
    if (!seen) return { name: n.name, action: 'create', cause: 'new', reasons: ['new network'] };
    if (seen.hash && seen.hash !== networkHash(n)) {
      return { name: n.name, action: 'none', cause: 'changed', reasons: ['its definition differs from the existing network; the agent does not recreate a network in place: give it a new name (its key or `name:`), the services move to the new one, and the old one goes when pruning'] };
    }
    return { name: n.name, action: 'none', cause: 'in-sync', reasons: ['up to date'] };
  });
  const names = new Set(wanted.map((n) => n.name));
  for (const n of Object.values(observed).filter((o) => !names.has(o.name)).sort((a, b) => a.name.localeCompare(b.name))) {
    steps.push(input.prune ? { name: n.name, action: 'remove', cause: 'orphan', reasons: ['no longer in the desired state: removed once no container uses it'] } : { name: n.name, action: 'none', cause: 'orphan', reasons: ['no longer in the desired state; kept because pruning is disabled'] });
  }
  return steps;
}

function planService(d: DesiredService, wave: number, input: PlanInput): PlanStep {
  const name = d.name;
  const applied = input.applied[name];
  const held = input.held[name];
  const current = input.actual.services[name]?.current;
  const step: PlanStep = { service: name, action: 'none', cause: 'in-sync', reasons: [], wave, dependsOn: d.dependsOn };
  if (current) step.from = currentOf(current, applied);

  // Which spec to run: the desired one, or the last applied one while the desired one may not be.
  let target: StepTarget = withNetworks({ hash: d.hash, image: d.spec.image, spec: d.spec, agent: d.agent, dependsOn: d.dependsOn, revision: input.desired.revision, externalVolumes: externalVolumes(input.desired, d.spec) }, input.desired);
  let keepCause: StepCause | undefined;
  if (d.agent.paused && d.hash !== applied?.hash) {
    step.paused = true;
    if (!applied) return { ...step, cause: 'paused', reasons: ['paused (x-agent.paused): not created'] };
    step.reasons.push('paused (x-agent.paused): keeping the last applied spec');
    keepCause = 'paused';
  } else if (held && held.hash === d.hash) {
    const quarantined = held.kind === 'quarantined';
    step.held = { kind: quarantined ? 'quarantined' : 'failed', image: held.image, hash: held.hash, reason: held.reason, at: held.at };
    keepCause = quarantined ? 'quarantined' : 'held';
    if (!applied) {
      step.reasons.push(quarantined ? `held: ${held.reason}` : `held: ${displayImage(held.image)} failed (${held.reason}); change the desired state to retry`);
      return { ...step, cause: keepCause };
    }
    step.reasons.push(quarantined ? `held: ${held.reason}; keeping the last applied spec` : `held: ${describeImageChange(applied.spec.image, held.image).replace(/^image /, '')} failed; keeping the last applied spec`);
  } else if (applied && applied.hash !== d.hash) {
    // Outside its window an update waits; what was applied is kept, and repaired if need be.
    const deferred = windowDeferral(d.agent.window, name, input);
    if (deferred) {
      step.reasons.push(deferred.reason);
      step.deferred = deferred.until;
      keepCause = 'deferred';
    }
  }
  if (keepCause && applied) target = appliedTarget(applied, input.desired);
  step.to = target;

  if (!current) {
    step.action = 'create';
    step.cause = applied ? 'missing' : 'new';
    step.reasons.push(applied ? 'container missing (removed outside the agent)' : 'new service');
    return step;
  }
  const runningHash = current.labels[LABELS.specHash];
  if (runningHash !== target.hash) {
    const deferred = windowDeferral(d.agent.window, name, input);
    if (deferred) {
      step.reasons.push(deferred.reason);
      step.deferred = deferred.until;
      step.cause = 'deferred';
      return step;
    }
    const lost = takeoverLosesData(current, target.spec);
    if (lost) {
      step.cause = 'blocked';
      step.reasons.push(lost);
      return step;
    }
    step.action = 'update';
    const known = applied && applied.hash === runningHash ? applied.spec : undefined;
    step.cause = known ? 'changed' : 'drift';
    if (known) step.reasons.push(...describeSpecChanges(known, target.spec));
    else if (current.labels[LABELS.managed] !== 'true') step.reasons.push(`taken over from docker compose: ${current.name} is replaced by the agent's container through a transaction (backup, health gate, rollback); its volumes and networks are kept`);
    else step.reasons.push(`running container does not match the last applied spec${current.image !== target.image ? `; ${describeImageChange(current.image, target.image)}` : ''}`);
    if (step.reasons.length === 0) step.reasons.push('spec changed');
    return step;
  }
  const stopped = describeStopped(current);
  if (stopped) {
    step.action = 'update';
    step.cause = 'stopped';
    step.reasons.push(stopped);
  } else {
    step.cause = keepCause ?? 'in-sync';
    if (step.reasons.length === 0) step.reasons.push('up to date');
  }
  return step;
}

/**
 * A docker compose container about to be taken over whose data is somewhere the new container
 * would not mount: its `./data` bind (Compose's project folder) or its anonymous volume, where
 * the agent's container would start on an empty data directory. Says what to do instead.
 */
function takeoverLosesData(current: ContainerInfo, spec: ContainerSpec): string | undefined {
  if (current.labels[LABELS.managed] === 'true' || !current.mounts) return undefined;
  for (const m of spec.volumes) {
    if (m.project) continue;
    const theirs = current.mounts.find((x) => x.target === m.target);
    if (!theirs || theirs.type === 'tmpfs' || (theirs.type === m.type && theirs.source === m.source)) continue;
    return `not taken over from docker compose yet: ${current.name} keeps ${m.target} in ${theirs.type === 'volume' ? `the volume ${theirs.source}` : theirs.source}, and the agent's container would mount ${m.type === 'volume' ? `the volume ${m.source}` : m.source} there, without that data. Copy the data over first (or mount the same ${theirs.type === 'volume' ? 'volume, by its name' : 'path'} in the desired state), then apply`;
  }
  return undefined;
}

function currentOf(c: ContainerInfo, applied: AppliedRecord | undefined): StepCurrent {
  const hash = c.labels[LABELS.specHash] ?? '';
  const from: StepCurrent = { containerId: c.id, name: c.name, image: c.image, hash, restartPolicy: c.restartPolicy };
  if (applied) from.agent = applied.agent;
  return from;
}

function appliedTarget(applied: AppliedRecord, desired: DesiredState): StepTarget {
  return withNetworks({ hash: applied.hash, image: applied.spec.image, spec: applied.spec, agent: applied.agent, dependsOn: applied.dependsOn, revision: applied.revision, externalVolumes: externalVolumes(desired, applied.spec) }, desired);
}

/** The definitions of the networks a target joins and the labels of its volumes, from the desired state (what to create if missing). */
function withNetworks(target: StepTarget, desired: DesiredState): StepTarget {
  const byName = new Map(Object.values(desired.networks).map((n) => [n.name, n]));
  const specs = (target.spec.networks ?? []).flatMap((a) => byName.get(a.network) ?? []);
  const mounted = new Set(target.spec.volumes.filter((m) => m.type === 'volume').map((m) => m.source));
  const labels = Object.fromEntries(Object.values(desired.volumes).filter((v) => mounted.has(v.name) && Object.keys(v.labels).length > 0).map((v) => [v.name, v.labels]));
  const drivers = Object.fromEntries(Object.values(desired.volumes).filter((v) => mounted.has(v.name) && v.driver).map((v) => [v.name, v.driver!]));
  return { ...target, ...(specs.length > 0 ? { networks: specs } : {}), ...(Object.keys(labels).length > 0 ? { volumeLabels: labels } : {}), ...(Object.keys(drivers).length > 0 ? { volumeDrivers: drivers } : {}) };
}

/** The named volumes a spec mounts that the desired state declares `external`: they must exist already. */
function externalVolumes(desired: DesiredState, spec: ContainerSpec): string[] {
  const external = new Set(Object.values(desired.volumes).filter((v) => v.external).map((v) => v.name));
  return spec.volumes.filter((m) => m.type === 'volume' && external.has(m.source)).map((m) => m.source);
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
