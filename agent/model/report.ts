import type { DesiredState } from './desired.js';
import type { ValidationIssue } from './issues.js';
import type { Plan } from './plan.js';
import type { TransactionRecord } from './records.js';
import type { RevertOutcome } from './revert.js';

export type ReconcileResult = 'succeeded' | 'no-op' | 'failed' | 'invalid' | 'error';

export interface ReconcileReport {
  result: ReconcileResult;
  message: string;
  revision?: string;
  plan?: Plan;
  transactions: TransactionRecord[];
  issues?: ValidationIssue[];
  /** The error class when the reconcile could not run: the loop backs off on transient ones. */
  errorClass?: 'terminal' | 'transient' | 'waiting';
  /** The source could not be read fresh (a failed fetch): the pass used the last commit fetched. */
  sourceError?: string;
  /** Revert commits pushed by this pass: the source changed, another pass should follow at once. */
  revertsPushed?: number;
  /** Revert attempts of this pass and what they came to. */
  reverts?: RevertOutcome[];
  /** The valid desired state this pass applied: scheduled jobs follow it. */
  desired?: DesiredState;
  /** How long the pass took (set by the loop). */
  durationMs?: number;
}

