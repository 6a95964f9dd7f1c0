import type { AgentOptions, ContainerSpec } from '../desired/types.js';

export type PlanAction = 'create' | 'update' | 'remove' | 'none';

export interface ImageAndHash {
  image: string;
  hash: string;
}

export interface PlanStep {
  service: string;
  action: PlanAction;
  /** Why, in words a person understands: "image 1.22.6 -> 1.23.0", "container exited (code 1)". */
  reasons: string[];
  from?: ImageAndHash;
  to?: ImageAndHash;
  /** Set when the desired spec failed before and is not retried until the desired state changes. */
  held?: ImageAndHash & { reason: string; at: string };
  /** Set when an update waits for the service's maintenance window: when it opens next. */
  deferred?: string;
  dependsOn: string[];
}

export interface Plan {
  stack: string;
  revision: string;
  steps: PlanStep[];
  /** Number of steps that change something. */
  changes: number;
}

/** What the agent last applied successfully to a service: the fallback target while a newer spec is held. */
export interface AppliedRecord {
  hash: string;
  spec: ContainerSpec;
  agent: AgentOptions;
  dependsOn: { service: string; condition: string }[];
  revision: string;
  at: string;
}

/** A desired spec whose update failed: held until the desired state changes. */
export interface FailedRecord {
  /** failed: the update was tried and did not succeed; quarantined: renovate.json forbids the version. */
  kind?: 'failed' | 'quarantined';
  hash: string;
  image: string;
  revision: string;
  reason: string;
  at: string;
}
