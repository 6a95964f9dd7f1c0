import type { ContainerId } from '../core/ids.js';
import type { RestartPolicy } from './desired.js';

/**
 * The actual state: what the engine runs, as the agent reads it. Only containers carrying the
 * agent's labels are ever part of it.
 */

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
export type ContainerHealth = 'healthy' | 'unhealthy' | 'starting' | 'none';

/** What the agent needs to know about a container, read from the engine. */
export interface ContainerInfo {
  id: ContainerId;
  name: string;
  /** The image reference the container was created from, as written. */
  image: string;
  imageId: string;
  labels: Record<string, string>;
  status: ContainerStatus;
  exitCode: number;
  oomKilled: boolean;
  /** Engine-side error for a container that failed to start. */
  error: string;
  health: ContainerHealth;
  /** Output of the latest Docker health check run, trimmed. */
  healthOutput: string;
  /** Whether the container has a Docker HEALTHCHECK (from the image or the spec). */
  hasHealthcheck: boolean;
  /**
   * That HEALTHCHECK as a command to exec (`CMD-SHELL x` as `/bin/sh -c x`), and its timeout,
   * so the health gate can run it at once instead of waiting for Docker's first interval.
   */
  healthcheckCommand?: { argv: string[]; timeoutMs: number };
  restartCount: number;
  startedAt: string;
  finishedAt: string;
  restartPolicy: RestartPolicy;
  /** Its mounts: a volume by name, a bind by host path; what a takeover must find again. */
  mounts?: { type: 'volume' | 'bind' | 'tmpfs'; source: string; target: string }[];
}

export interface ObservedService {
  name: string;
  /** The live container: `<stack>-<service>-1` as Compose names it, or its `container_name`. */
  current?: ContainerInfo;
  /** Other containers of the service: the previous one kept by a transaction, or leftovers. */
  others: ContainerInfo[];
}

/** A network the agent created for the stack. */
export interface ObservedNetwork {
  name: string;
  /** The hash of the definition it was created from (label). */
  hash: string;
  /** Ids of the containers attached. */
  containers: string[];
}

export interface ActualState {
  stack: string;
  /** Keyed by service name, sorted. */
  services: Record<string, ObservedService>;
  /** The agent's networks of the stack, keyed by engine name. */
  networks?: Record<string, ObservedNetwork>;
}

