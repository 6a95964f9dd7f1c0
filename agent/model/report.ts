import type { ErrorClass, ErrorCode } from '../core/errors.js';
import type { DesiredState } from './desired.js';
import type { ValidationIssue } from './issues.js';
import type { Plan } from './plan.js';
import type { TransactionRecord } from './records.js';
import type { RevertOutcome } from './revert.js';

export type ReconcileResult = 'succeeded' | 'no-op' | 'failed' | 'invalid' | 'error';

/** What kept a pass from applying anything at all. */
export type BlockedReason = 'DockerUnavailable' | 'SourceUnavailable' | 'InternalError';

export interface Blocked {
  reason: BlockedReason;
  message: string;
  /** transient: the loop retries with back-off; terminal: it waits for a change. */
  errorClass: ErrorClass;
  code?: ErrorCode;
}

/** Why a pass left a service alone. */
export type WaitingReason = 'dependency-not-ready' | 'busy' | 'interrupted';

export interface Waiting {
  reason: WaitingReason;
  message: string;
}

/** What one reconcile pass did and saw: the loop, the metrics, the notifications and `agent apply` read it. */
export interface ReconcileReport {
  result: ReconcileResult;
  message: string;
  revision?: string;
  /** The plan the pass ran (it carries specs: show people `planView`). */
  plan?: Plan;
  /** The plan after the pass: what is still not as desired (held, deferred, waiting...). */
  pending?: Plan;
  transactions: TransactionRecord[];
  issues?: ValidationIssue[];
  /** Set when the pass could not run: why, and whether to retry soon. */
  blocked?: Blocked;
  /** The source could not be read fresh (a failed fetch): the pass used the last commit fetched. */
  sourceError?: string;
  sourceErrorCode?: ErrorCode;
  /** Services the pass left alone, and why. */
  waiting?: Record<string, Waiting>;
  /** Revert commits pushed by this pass: the source changed, another pass should follow at once. */
  revertsPushed?: number;
  /** Revert attempts of this pass and what they came to. */
  reverts?: RevertOutcome[];
  /** The valid desired state this pass applied: scheduled jobs follow it. */
  desired?: DesiredState;
  /** How long the pass took (set by the loop). */
  durationMs?: number;
}

/** Whether the loop should retry soon (with back-off) rather than wait for the interval. */
export function retrySoon(r: ReconcileReport): boolean {
  return r.blocked?.errorClass === 'transient' || r.sourceError !== undefined || Object.values(r.waiting ?? {}).some((w) => w.reason === 'interrupted');
}
