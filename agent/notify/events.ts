/**
 * What the agent tells people about. Producers (the transaction, the revert, backups, the
 * certificate renewal, the reconcile loop) build an `AgentEvent`; the notifier routes it to
 * channels, renders it and de-duplicates repeats by `dedupKey`.
 */
export type AgentEventType =
  | 'update-applied' // an update of a service with x-agent.policy manual succeeded
  | 'update-failed' // an update failed or was rolled back (any policy)
  | 'revert-pushed' // the agent pushed a revert commit after a rollback
  | 'revert-refused' // the revert push was refused (protected branch, hook, credentials)
  | 'backup-failed'
  | 'drill-passed' // a restore drill restored a service's latest backup and found it whole
  | 'drill-failed'
  | 'desired-state-invalid'
  | 'certificate-renewed'
  | 'certificate-renewal-failed'
  | 'dependency-unreachable'; // Docker, Git or the backup store unreachable for longer than a threshold

/** Every event type, in a stable order (configuration default: all of them). */
export const EVENT_TYPES: readonly AgentEventType[] = Object.freeze([
  'update-applied',
  'update-failed',
  'revert-pushed',
  'revert-refused',
  'backup-failed',
  'drill-passed',
  'drill-failed',
  'desired-state-invalid',
  'certificate-renewed',
  'certificate-renewal-failed',
  'dependency-unreachable',
] as const);

/** One thing that happened, with enough context for an operator who reads only this. */
export interface AgentEvent {
  type: AgentEventType;
  severity: 'info' | 'warning' | 'critical';
  host: string;
  stack: string;
  service?: string;
  /** Images (or versions) before and after, when the event is about an update. */
  from?: string;
  to?: string;
  /** One line saying what happened, e.g. "nginx update 1.22.6 -> 1.23.0 failed and was rolled back". */
  title: string;
  /** Why, in words: the failed probe and its output, the refused push's answer... */
  reason?: string;
  /** What the operator can do next. */
  action?: string;
  /** ISO time. */
  at: string;
  /** Same key = same problem: repeated events with one key are de-duplicated. */
  dedupKey: string;
  /** Extra facts shown as key: value lines (commit, backup id, transaction id...). */
  details?: Record<string, string>;
}
