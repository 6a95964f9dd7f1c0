/**
 * One error class for everything the agent reports, with a stable `code` that tests and
 * scripts match on, structured `data`, and a classification that decides what the reconciler
 * does next: wait for a new desired state, retry with backoff, or wait for a dependency.
 */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'DESIRED_INVALID'
  | 'SOURCE_UNAVAILABLE'
  | 'SOURCE_AUTH_FAILED'
  | 'DOCKER_UNAVAILABLE'
  | 'DOCKER_ERROR'
  | 'IMAGE_NOT_FOUND'
  | 'PULL_FAILED'
  | 'PULL_AUTH_FAILED'
  | 'CONTAINER_CREATE_FAILED'
  | 'NETWORK_CHANGED'
  | 'CONTAINER_START_FAILED'
  | 'HEALTH_CHECK_FAILED'
  | 'RELOAD_FAILED'
  | 'ROLLBACK_FAILED'
  | 'REVERT_FAILED'
  | 'DEPENDENCY_NOT_READY'
  | 'BACKUP_FAILED'
  | 'JOB_FAILED'
  | 'NOTIFY_FAILED'
  | 'STATE_LOCKED'
  | 'STATE_CORRUPT'
  | 'STATE_IO'
  | 'ABORTED'
  | 'INTERNAL';

/** terminal: wait for a new desired state; transient: retry with backoff; waiting: retry when a dependency is ready. */
export type ErrorClass = 'terminal' | 'transient' | 'waiting';

const defaultClass: Record<ErrorCode, ErrorClass> = {
  USAGE: 'terminal',
  CONFIG_INVALID: 'terminal',
  DESIRED_INVALID: 'terminal',
  SOURCE_UNAVAILABLE: 'transient',
  // The credentials may be fixed (a file rotated) without a restart: retried with back-off.
  SOURCE_AUTH_FAILED: 'transient',
  DOCKER_UNAVAILABLE: 'transient',
  // The engine refused a call (4xx, terminal); 5xx answers are made transient where they are raised.
  DOCKER_ERROR: 'terminal',
  IMAGE_NOT_FOUND: 'terminal',
  PULL_FAILED: 'transient',
  PULL_AUTH_FAILED: 'terminal',
  CONTAINER_CREATE_FAILED: 'terminal',
  // A network whose definition changed is not recreated in place: the operator renames it (docs/desired-state.md).
  NETWORK_CHANGED: 'waiting',
  CONTAINER_START_FAILED: 'terminal',
  HEALTH_CHECK_FAILED: 'terminal',
  // The service's reload command refused the new files (nginx -t failing, say): the version is held.
  RELOAD_FAILED: 'terminal',
  ROLLBACK_FAILED: 'terminal',
  REVERT_FAILED: 'terminal',
  DEPENDENCY_NOT_READY: 'waiting',
  BACKUP_FAILED: 'transient',
  JOB_FAILED: 'transient',
  NOTIFY_FAILED: 'transient',
  STATE_LOCKED: 'transient',
  STATE_CORRUPT: 'terminal',
  STATE_IO: 'transient',
  ABORTED: 'transient',
  INTERNAL: 'terminal',
};

/** The class of an error code: what the agent does next when it meets it. */
export function classOf(code: ErrorCode): ErrorClass {
  return defaultClass[code];
}

export interface AgentErrorOptions {
  data?: Record<string, unknown>;
  cause?: unknown;
  class?: ErrorClass;
}

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;
  readonly errorClass: ErrorClass;

  constructor(code: ErrorCode, message: string, options: AgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.data = options.data ?? {};
    this.errorClass = options.class ?? defaultClass[code];
  }
}

export function isAgentError(err: unknown, code?: ErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}

/** A message for any thrown value; never includes a stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Wraps an unknown failure, keeping an AgentError as it is. */
export function toAgentError(err: unknown, code: ErrorCode, message?: string): AgentError {
  if (err instanceof AgentError) return err;
  return new AgentError(code, message ? `${message}: ${errorMessage(err)}` : errorMessage(err), { cause: err });
}
