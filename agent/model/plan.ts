import type { RestartPolicy } from './desired.js';
import type { AgentOptions, ContainerSpec, Dependency, NetworkSpec } from './desired.js';

export type PlanAction = 'create' | 'update' | 'remove' | 'none';

/**
 * Why a step does what it does. Conditions, notifications and exit codes are computed from
 * this, never from the human reasons.
 * - create: `new` (never applied), `missing` (its container was removed outside the agent);
 * - update: `changed` (the desired spec differs), `drift` (the running container is not what
 *   the agent applied last), `stopped` (it exited, died or was never started);
 * - remove: `orphan` (no longer desired, pruning on);
 * - none: `in-sync`, `held` (its version failed), `quarantined` (renovate.json forbids it),
 *   `paused` (x-agent.paused, not created yet), `deferred` (waits for its maintenance window),
 *   `orphan` (no longer desired, kept because pruning is off), `blocked` (a network it joins
 *   changed its definition: see the network steps).
 */
export type StepCause = 'new' | 'missing' | 'changed' | 'drift' | 'stopped' | 'orphan' | 'in-sync' | 'held' | 'quarantined' | 'paused' | 'deferred' | 'blocked';

/** Causes that mean "the service is not running": the stack is Degraded until they are repaired. */
export const NOT_RUNNING_CAUSES: readonly StepCause[] = ['new', 'missing', 'stopped'];

/**
 * What a step creates: everything the transaction needs, decided by the plan. While the desired
 * spec is held, paused or waiting for its window, this is the last applied spec (a repair).
 */
export interface StepTarget {
  hash: string;
  image: string;
  spec: ContainerSpec;
  agent: AgentOptions;
  dependsOn: Dependency[];
  /** The source revision the spec comes from. */
  revision: string;
  /** Named volumes the spec mounts that must already exist (declared `external`). */
  externalVolumes: string[];
  /** The networks the spec joins, as the desired state defines them: created when missing (external ones must exist). */
  networks?: NetworkSpec[];
  /** Labels of the named volumes it mounts (top-level `volumes.<key>.labels`): given to a volume it creates. */
  volumeLabels?: Record<string, Record<string, string>>;
  /** Drivers and driver options of the named volumes it creates (top-level `volumes.<key>.driver`, `driver_opts`), by engine name. */
  volumeDrivers?: Record<string, { name: string; options: Record<string, string> }>;
}

/** The live container a step replaces or removes. */
export interface StepCurrent {
  containerId: string;
  name: string;
  image: string;
  /** Its spec hash label ('' when it has none). */
  hash: string;
  restartPolicy: RestartPolicy;
  /** The agent options it was applied with (its health options, for the check after a rollback). */
  agent?: AgentOptions;
}

/** A desired spec the plan does not apply: it failed before, or renovate.json quarantines it. */
export interface StepHold {
  kind: 'failed' | 'quarantined';
  image: string;
  hash: string;
  reason: string;
  at: string;
}

export interface PlanStep {
  service: string;
  action: PlanAction;
  cause: StepCause;
  /** Why, in words a person understands: "image 1.22.6 -> 1.23.0", "container exited (code 1)". */
  reasons: string[];
  /**
   * Dependency wave: every service of a wave runs after all services of earlier waves, the
   * services of one wave in parallel. Removals come last.
   */
  wave: number;
  from?: StepCurrent;
  to?: StepTarget;
  /** Set while the desired spec is held (whatever the action: a held service may still be repaired). */
  held?: StepHold;
  /** x-agent.paused: the desired spec is not applied. */
  paused?: boolean;
  /** An update waits for the service's maintenance window: when it opens next. */
  deferred?: string;
  /** What must run (or be healthy) before this step may start. */
  dependsOn: Dependency[];
  /** An update that changes the bound repository folders only, of a service with `x-agent.reload`: applied in place. */
  reload?: ReloadMount[];
}

/** One live folder of a reload: the container's bind at `target` (host folder `path`), from one copy of the repository's files to another. */
export interface ReloadMount {
  target: string;
  path: string;
  from: string;
  to: string;
}

/**
 * A network of the stack. `create`: it does not exist yet (the transactions of the services
 * joining it create it first); `remove`: the agent's network no service uses any more, when
 * pruning; `none` with cause `changed`: its definition differs from the network's, which the
 * agent does not recreate in place (the services joining it are blocked until it is renamed).
 */
export interface NetworkStep {
  name: string;
  action: 'create' | 'remove' | 'none';
  cause: 'new' | 'in-sync' | 'changed' | 'orphan' | 'external';
  reasons: string[];
}

/**
 * The only decision of a reconcile pass: the executor runs it as it is. It carries specs, and
 * so environment values: show people `planView(plan)`, never the plan itself.
 */
export interface Plan {
  stack: string;
  revision: string;
  /** In wave order, ties by name. */
  steps: PlanStep[];
  /** The stack's networks, by name. */
  networks: NetworkStep[];
  /** Number of steps that change something. */
  changes: number;
}
