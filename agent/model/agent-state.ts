import type { Blocked, ReconcileResult, Waiting } from './report.js';
import type { ValidationIssue } from './issues.js';
import type { HeldRecord, TransactionRecord } from './records.js';
import type { RevertRequest } from './revert.js';
import type { CommitSummary } from './source.js';

export type ConditionType = 'Ready' | 'Reconciling' | 'Degraded' | 'Stalled';
export type ConditionReason =
  | 'Succeeded'
  | 'Progressing'
  | 'Idle'
  | 'UpdateFailed'
  | 'RollbackFailed'
  | 'ServiceNotRunning'
  | 'DependencyNotReady'
  | 'ValidationFailed'
  | 'PolicyDenied'
  | 'SourceUnavailable'
  | 'DockerUnavailable'
  | 'SignatureRefused'
  | 'RevertRefused'
  | 'Quarantined'
  | 'NetworkChanged'
  | 'TakeoverBlocked'
  | 'InternalError';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: ConditionReason;
  message: string;
  lastTransitionTime: string;
}

/** The rollback written back to Git: pending until pushed; refused or failed ones are retried. */
export interface RevertState {
  state: 'pending' | 'pushed' | 'refused' | 'failed';
  request: RevertRequest;
  attempts: number;
  at: string;
  commit?: string;
  reverts?: string;
  quarantined?: string;
  reason?: string;
  nextAttemptAt?: string;
}

/** A version quarantined by a rule the agent wrote into renovate.json. */
export interface QuarantineEntry {
  /** The service using that image, when one does. */
  service?: string;
  image: string;
  version: string;
  description: string;
  /** The desired state asks for this very version: the agent refuses to apply it. */
  blocking: boolean;
}

export interface ServiceState {
  /** The desired spec that failed, held until the desired state changes. */
  held?: HeldRecord;
  revert?: RevertState;
  lastTransaction?: TransactionRecord;
  /** Why the last reconcile did not act on the service (a dependency not ready, busy, interrupted). */
  waiting?: Waiting;
}

export interface AgentState {
  version: 1;
  stack?: string;
  source?: {
    kind: 'dir' | 'git';
    /** A path, or a repository URL with credentials redacted. */
    location: string;
    branch?: string;
    path?: string;
    revision?: string;
    /** The last time the source was read successfully (for Git: fetched). */
    lastLoadedAt?: string;
    /** Git: the commit the desired state was read from. */
    commit?: CommitSummary;
    /** The last read or fetch failed: why. Cleared by the next success. */
    error?: string;
    errorAt?: string;
  };
  /** What the last valid desired state asked for. */
  desired?: {
    revision: string;
    loadedAt: string;
    services: Record<string, { image: string; hash: string; policy: string }>;
  };
  /** Set while the newest desired state is invalid, or its commit signature refused: nothing is applied. */
  invalid?: { revision: string; at: string; issues: ValidationIssue[]; kind?: 'validation' | 'signature' };
  /** The agent's quarantine rules in renovate.json; `blocking` ones are asked for and not applied. */
  quarantined?: QuarantineEntry[];
  lastReconcile?: { startedAt: string; finishedAt: string; revision?: string; result: ReconcileResult; message: string; blocked?: Blocked };
  lastAppliedRevision?: string;
  /** Git: the commit of the last revision applied in full. */
  lastAppliedCommit?: CommitSummary;
  conditions: Condition[];
  services: Record<string, ServiceState>;
}

export function emptyState(): AgentState {
  return { version: 1, conditions: [], services: {} };
}
