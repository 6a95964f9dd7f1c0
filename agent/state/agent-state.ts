import type { ErrorCode } from '../core/errors.js';
import type { ValidationIssue } from '../desired/issues.js';
import type { FailedRecord } from '../plan/types.js';
import type { TxKind, TxPhase } from './journal.js';

/** interrupted: the agent stopped before anything had changed; the update will be tried again. */
export type TxResult = 'succeeded' | 'failed' | 'rolled-back' | 'rollback-failed' | 'interrupted';

/** One finished transaction, as the history and `agent status` show it. Never holds secrets. */
export interface TransactionRecord {
  txId: string;
  service: string;
  kind: TxKind;
  result: TxResult;
  revision: string;
  startedAt: string;
  finishedAt: string;
  from?: string;
  to?: string;
  /** For failures: what failed, in words ("rolled back: probe http://... got 500"). */
  reason?: string;
  code?: ErrorCode;
  /** The phase that failed. */
  failedPhase?: TxPhase;
  logs?: string;
  /** True when the transaction was finished by recovery after the agent was interrupted. */
  recovered?: boolean;
}

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
  | 'SourceUnavailable'
  | 'DockerUnavailable'
  | 'InternalError';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: ConditionReason;
  message: string;
  lastTransitionTime: string;
}

export interface ServiceState {
  /** The desired spec that failed, held until the desired state changes. */
  failed?: FailedRecord;
  lastTransaction?: TransactionRecord;
  /** Why the last reconcile did not act on the service (a dependency not ready). */
  waiting?: string;
}

export type ReconcileResult = 'succeeded' | 'no-op' | 'failed' | 'invalid' | 'error';

export interface AgentState {
  version: 1;
  stack?: string;
  source?: {
    kind: 'dir' | 'git';
    location: string;
    revision?: string;
    lastLoadedAt?: string;
    error?: string;
  };
  /** What the last valid desired state asked for. */
  desired?: {
    revision: string;
    loadedAt: string;
    services: Record<string, { image: string; hash: string; policy: string }>;
  };
  /** Set while the newest desired state is invalid: nothing is applied. */
  invalid?: { revision: string; at: string; issues: ValidationIssue[] };
  lastReconcile?: { startedAt: string; finishedAt: string; revision?: string; result: ReconcileResult; message: string };
  lastAppliedRevision?: string;
  conditions: Condition[];
  services: Record<string, ServiceState>;
}

export function emptyState(): AgentState {
  return { version: 1, conditions: [], services: {} };
}
