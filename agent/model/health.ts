/**
 * What the health gate saw when a container failed it. Notifications, the revert commit and
 * the quarantine rule describe the failure from this; `reason` is its wording.
 */
export type GateFailure =
  /** The container stopped and stayed stopped. */
  | { kind: 'exited'; exitCode: number; oomKilled: boolean; error?: string; output?: string }
  /** The container stopped and its restart policy started it again (exit code of the last exit, as the engine's events tell it). */
  | { kind: 'restarted'; exitCode?: number; restarts: number; output?: string }
  /** Docker's own HEALTHCHECK says unhealthy. */
  | { kind: 'unhealthy'; output?: string }
  /** An x-agent probe passed, then failed `failures` times in a row. */
  | { kind: 'probe-failed'; probe: string; failures: number; detail: string }
  /** Not healthy before the deadline: which checks were still pending. */
  | { kind: 'timed-out'; afterMs: number; pending: string }
  | { kind: 'disappeared' }
  | { kind: 'not-running'; status: string }
  /** Cut short by shutdown: says nothing about the version. */
  | { kind: 'aborted' };

export type GateFailureKind = GateFailure['kind'];

export type GateVerdict =
  | { ok: true; durationMs: number }
  | {
      ok: false;
      failure: GateFailure;
      /** The failure happened after the container was healthy, during the stabilisation window. */
      stabilizing: boolean;
      /** The failure in words: "container exited with code 3; output: ...". */
      reason: string;
      durationMs: number;
    };
