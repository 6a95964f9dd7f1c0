
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
