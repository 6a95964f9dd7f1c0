import type { Readable } from 'node:stream';
import type { ContainerId } from '../core/ids.js';
import type { ContainerSpec, Mount, NetworkAttachment, NetworkSpec, RestartPolicy } from '../model/desired.js';
import type { ContainerInfo } from '../model/actual.js';

export interface NetworkInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Containers attached (ids). */
  containers: string[];
}

export interface CreateContainerRequest {
  name: string;
  spec: ContainerSpec;
  /** The agent's own labels, added to the spec's. */
  labels: Record<string, string>;
}

export interface PullProgress {
  /** Bytes downloaded so far over all layers, when the engine reports it. */
  downloadedBytes: number;
  totalBytes: number;
}

export interface ExecResult {
  exitCode: number;
  /** stdout and stderr interleaved, trimmed to a bounded size. */
  output: string;
}

/**
 * The Docker engine, as far as the agent uses it. Only the adapter imports dockerode; the
 * executor, observer and health gate are written against this port, and unit tests run them
 * against an in-memory fake that can inject faults.
 */
export interface DockerPort {
  /** Resolves when the engine answers; rejects with DOCKER_UNAVAILABLE otherwise. */
  ping(signal?: AbortSignal): Promise<void>;
  /** Containers carrying every given label (value `true`: any value). Includes stopped ones. */
  listContainers(labels: Record<string, string | true>): Promise<ContainerInfo[]>;
  /** undefined when no such container exists. */
  inspectContainer(idOrName: string): Promise<ContainerInfo | undefined>;
  hasImage(ref: string): Promise<boolean>;
  /** Pulls from the registry with credentials from the Docker config; IMAGE_NOT_FOUND, PULL_AUTH_FAILED or PULL_FAILED on failure. */
  pullImage(ref: string, options?: { signal?: AbortSignal; onProgress?: (p: PullProgress) => void; platform?: string }): Promise<void>;
  createContainer(req: CreateContainerRequest): Promise<ContainerId>;
  startContainer(id: ContainerId): Promise<void>;
  /** Stops gracefully (spec's signal, then SIGKILL after timeoutMs); a stopped container is fine. */
  stopContainer(id: ContainerId, timeoutMs: number): Promise<void>;
  /** Removes (forcefully if running); a missing container is fine. */
  removeContainer(id: ContainerId): Promise<void>;
  renameContainer(id: ContainerId, name: string): Promise<void>;
  setRestartPolicy(id: ContainerId, policy: RestartPolicy): Promise<void>;
  exec(id: ContainerId, argv: string[], options: { timeoutMs: number; signal?: AbortSignal }): Promise<ExecResult>;
  /** The last lines of the container's output, for reports. */
  logs(id: ContainerId, tail: number): Promise<string>;
  /**
   * The container's exits since `sinceMs` (ms since the epoch), oldest first, from the engine's
   * events: the exit code of a container its restart policy already started again, which
   * `inspect` no longer tells (it says 0 once the container runs).
   */
  exits(id: ContainerId, sinceMs: number): Promise<{ exitCode: number; at: number }[]>;
  /** Creates the named volume when it does not exist; never changes an existing one. */
  ensureVolume(name: string, labels: Record<string, string>, driver?: { name: string; options: Record<string, string> }): Promise<void>;
  volumeExists(name: string): Promise<boolean>;
  /** Removes a volume no container uses (a scratch volume of a restore); a missing one is fine. */
  removeVolume(name: string): Promise<void>;
  /**
   * Creates the network when it does not exist, labelled with the agent's labels and the hash of
   * its definition; never changes an existing one (NETWORK_CHANGED when its definition differs).
   */
  ensureNetwork(spec: NetworkSpec, labels: Record<string, string>): Promise<void>;
  networkExists(name: string): Promise<boolean>;
  /** The agent's networks of a stack, with their definition hash and the containers on them. */
  listNetworks(labels: Record<string, string>): Promise<NetworkInfo[]>;
  /** Removes a network nobody uses; a missing one is fine. */
  removeNetwork(name: string): Promise<void>;
  /**
   * Attaches a container to a network with the attachment's aliases and addresses. A container
   * attached without all of them is disconnected and connected again (the engine cannot change
   * an endpoint's aliases in place). Idempotent.
   */
  setNetworkAliases(id: ContainerId, attachment: NetworkAttachment): Promise<void>;
  /**
   * Runs a command in a running container and streams its raw output: Docker's multiplexed
   * frames, to be demultiplexed with backpressure by the caller. `stdin`, when given, is piped
   * in and closed at its end.
   */
  execStream(id: ContainerId, argv: string[], options?: { stdin?: Readable }): Promise<{ output: Readable; exitCode(): Promise<number> }>;
  /** A tar stream of a path in a container (running or stopped), mounted volumes included. */
  getArchive(id: ContainerId, path: string): Promise<Readable>;
  /** Extracts a tar stream into a directory of a container (running or stopped). */
  putArchive(id: ContainerId, path: string, archive: Readable): Promise<void>;
  /**
   * Runs a throwaway container from `image` with the given mounts, waits for it, removes it.
   * No network unless `networkMode` says otherwise; `argv` replaces the image's entrypoint
   * unless `keepEntrypoint` (then it is the command, e.g. certbot's arguments).
   */
  runOnce(image: string, argv: string[], mounts: Mount[], options: { timeoutMs: number; user?: string; labels: Record<string, string>; networkMode?: string; keepEntrypoint?: boolean }): Promise<ExecResult>;
  /** Starts a throwaway container and streams its output; the signal kills it. Removed once it exits. */
  runStream(req: StreamRunRequest, signal?: AbortSignal): Promise<StreamRun>;
}

/** A throwaway container whose output is streamed: a tool the agent drives (restic). */
export interface StreamRunRequest {
  image: string;
  /** The command; the image's entrypoint is kept unless `entrypoint` replaces it. */
  argv: string[];
  entrypoint?: string[];
  user?: string;
  mounts: Mount[];
  /** Plain settings only: the engine shows a container's environment to anyone who inspects it. */
  env?: string[];
  /** Written into the container before it starts (a password file): never in its environment or its inspect output. */
  files?: { path: string; content: Buffer; mode: number }[];
  /** Piped to the process's standard input, which is closed at its end. */
  stdin?: Readable;
  labels: Record<string, string>;
  hostname?: string;
  /** 'none' unless given. */
  networkMode?: string;
}

export interface StreamRun {
  /** The process's standard output, with backpressure: consume it, or the process blocks. */
  stdout: Readable;
  /** The last 16 KiB of its standard error. */
  stderr(): string;
  /** Its exit code, once it has exited and the container is removed. */
  wait(): Promise<number>;
  /** Stops it at once (SIGKILL); `wait` then resolves. */
  kill(): Promise<void>;
}

/** The engine as read-only commands (`status`, `plan`) see it: nothing that changes a container. */
export type DockerReader = Pick<DockerPort, 'ping' | 'listContainers' | 'inspectContainer' | 'listNetworks'>;

/** A view of the engine with only the reading methods, for read-only commands. */
export function readOnlyDocker(docker: DockerReader): DockerReader {
  return { ping: (signal) => docker.ping(signal), listContainers: (labels) => docker.listContainers(labels), inspectContainer: (idOrName) => docker.inspectContainer(idOrName), listNetworks: (labels) => docker.listNetworks(labels) };
}
