import { AgentError, type ErrorCode } from '../core/errors.js';

/** Process exit codes; documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  invalidDesiredState: 3,
  updateFailed: 4,
  unavailable: 5,
  locked: 6,
  changesPending: 10,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Thrown by commands to end with a given code; only main.ts turns it into process.exit. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExitError';
  }
}

const BY_ERROR: Partial<Record<ErrorCode, ExitCode>> = {
  USAGE: EXIT.usage,
  CONFIG_INVALID: EXIT.usage,
  DESIRED_INVALID: EXIT.invalidDesiredState,
  SOURCE_UNAVAILABLE: EXIT.unavailable,
  SOURCE_AUTH_FAILED: EXIT.unavailable,
  DOCKER_UNAVAILABLE: EXIT.unavailable,
  STATE_LOCKED: EXIT.locked,
};

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof ExitError) return err.exitCode;
  if (err instanceof AgentError) return BY_ERROR[err.code] ?? EXIT.internal;
  return EXIT.internal;
}
