import type { SourceLocation } from './issues.js';
import type { ImageRef, Revision, SpecHash } from '../core/ids.js';

export type RestartPolicy = 'no' | 'always' | 'on-failure' | 'unless-stopped' | `on-failure:${number}`;

export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface Mount {
  type: 'volume' | 'bind';
  /** Named volume (already prefixed with the stack) or absolute host path. */
  source: string;
  target: string;
  readOnly: boolean;
  /** Named volumes: `volume.nocopy`, do not copy the image's content into a new volume. */
  noCopy?: boolean;
  /** A file or folder of the repository (a relative bind, a file secret or config): `source` is its immutable copy, made before the container is created. */
  project?: ProjectMount;
  /** A relative bind the repository does not hold: a data directory of the stack, created when missing and kept. */
  dataDir?: boolean;
}

/**
 * A secret or config whose content is not a file of the repository (an environment variable,
 * inline content): written into the created container before it starts, as Compose does. The
 * content is held like environment values (resolved specs stay in the 0600 state files only).
 */
export interface InjectedFile {
  kind: 'secret' | 'config';
  /** Its key under the top-level `secrets:` or `configs:`. */
  name: string;
  /** Absolute path in the container. */
  target: string;
  content: string;
  uid: number;
  gid: number;
  mode: number;
}

/** A file or folder of the project directory, by its path and the digest of its content at the revision. */
export interface ProjectMount {
  path: string;
  kind: 'file' | 'dir';
  digest: string;
}

/** The options of a container beyond image, command and mounts: limits, privileges, namespaces... */
export interface RuntimeOptions {
  workingDir?: string;
  /** `expose`: ports the image does not declare, `80/tcp`. */
  expose?: string[];
  tty?: boolean;
  stdinOpen?: boolean;
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  groupAdd?: string[];
  sysctls?: Record<string, string>;
  ulimits?: { name: string; soft: number; hard: number }[];
  shmSizeBytes?: number;
  memoryBytes?: number;
  /** -1: unlimited swap. */
  memorySwapBytes?: number;
  memoryReservationBytes?: number;
  nanoCpus?: number;
  cpuShares?: number;
  cpuset?: string;
  pidsLimit?: number;
  oomScoreAdj?: number;
  devices?: { host: string; container: string; permissions: string }[];
  /** Mount point -> options (`size=64m`). */
  tmpfs?: Record<string, string>;
  /** `host`, or `container:<name>` (Compose's `service:<name>` resolved). */
  pidMode?: string;
  ipcMode?: string;
  usernsMode?: string;
  logging?: { driver: string; options: Record<string, string> };
}

/** One network a container joins, as Compose attaches it: the service name is always an alias. */
export interface NetworkAttachment {
  /** Engine-side name of the network. */
  network: string;
  aliases: string[];
  ipv4Address?: string;
  ipv6Address?: string;
  /** Compose's `priority`: the network with the highest one is the container's primary. */
  priority?: number;
}

export type HealthcheckSpec =
  | { disabled: true }
  | { disabled: false; test: string[]; intervalMs?: number; timeoutMs?: number; retries?: number; startPeriodMs?: number };

/**
 * Everything that shapes the container. Its canonical JSON is hashed into the container's
 * label: a different hash means the container must be recreated.
 */
export interface ContainerSpec {
  image: ImageRef;
  /** Compose's `container_name`; otherwise the container is `<stack>-<service>-1`, as Compose names it. */
  containerName?: string;
  /** Compose's `platform`: the image variant pulled and run (`linux/arm64`). */
  platform?: string;
  command?: string[];
  entrypoint?: string[];
  environment: Record<string, string>;
  ports: PortBinding[];
  volumes: Mount[];
  /** Secrets and configs written into the container before it starts (the others are among `volumes`, read-only binds). */
  files?: InjectedFile[];
  /**
   * Docker's network mode: `host`, `bridge`, `none`, `container:<name>` (Compose's
   * `service:<name>` resolved to that service's container), or the engine name of the primary
   * network when the container joins networks.
   */
  networkMode: string;
  /** The networks it joins, primary first (highest priority, then by name); absent for the other modes. */
  networks?: NetworkAttachment[];
  hostname?: string;
  domainname?: string;
  /** Docker links, `<container>:<alias>`. */
  links?: string[];
  /** `host:ip` entries added to /etc/hosts. */
  extraHosts?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  healthcheck?: HealthcheckSpec;
  /** Compose's runtime options, as Docker's HostConfig takes them (docs/desired-state.md). */
  runtime?: RuntimeOptions;
  restart: RestartPolicy;
  labels: Record<string, string>;
  user?: string;
  init?: boolean;
  stopGracePeriodMs?: number;
  stopSignal?: string;
}

export interface ProbeTiming {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures, after the probe first passed, that fail the gate. */
  retries: number;
}

export type Probe =
  /** `expectStatus` empty: any 2xx or 3xx answer passes. */
  | ({ kind: 'http'; url: string; expectStatus: number[] } & ProbeTiming)
  | ({ kind: 'tcp'; host: string; port: number } & ProbeTiming)
  | ({ kind: 'exec'; argv: string[] } & ProbeTiming);

export interface HealthOptions {
  /** Deadline for the new container to become healthy. */
  timeoutMs: number;
  /** After it is healthy, the container must neither exit nor restart for this long. */
  stabilizationMs: number;
  probes: Probe[];
}

export type UpdatePolicy = 'auto' | 'manual';

/** A volume or path of the service to archive, resolved against its mounts. */
export interface BackupTarget {
  kind: 'volume' | 'path';
  /** For volumes: the key under top-level `volumes:`; for paths: the path. */
  name: string;
  /** Path in the container that is archived (the volume's mount point). */
  target: string;
}

export interface BackupSpec {
  postgres?: { service: string; database: string; user: string };
  targets: BackupTarget[];
  consistency: 'stop' | 'live';
  restoreOnRollback: boolean;
  /** The restore drill's check of the restored database: a query that must print `t`. */
  drill?: { query: string };
}

/** The `x-agent` block: how the agent handles the service; none of it shapes the container. */
export interface AgentOptions {
  policy: UpdatePolicy;
  /** Changes are not applied; the last applied spec is kept (and repaired). */
  paused?: boolean;
  /** Updates wait for this window; drift repair does not. */
  window?: WindowSpec;
  health: HealthOptions;
  backup?: BackupSpec;
  /** Compose's pull_policy: `always` pulls at every deploy, `never` only uses the image on the host; by default the image is pulled when missing. */
  pullPolicy?: 'always' | 'never';
  /**
   * `deploy.update_config.order: start-first`: the new container starts beside the old one,
   * without the service's aliases, and takes them once healthy (absent: stop-first, as Compose).
   */
  startFirst?: StartFirstOptions;
  /** `x-agent.reload`: a change of the bound repository folders only is applied in place with this command. */
  reload?: ReloadOptions;
  /** `deploy.rollback_config.monitor`: how long the previous version must stay up after a rollback (default: the health stabilisation, at most 5 s). */
  rollbackMonitorMs?: number;
}

export interface ReloadOptions {
  /** Run in the container once the folders hold the new files (nginx: `nginx -s reload`); exit 0 or the change is undone. */
  command: string[];
  timeoutMs: number;
}

export interface StartFirstOptions {
  /** How long both versions answer under the service's aliases before the old one is stopped (`x-agent.drain`). */
  drainMs: number;
}

export type DependencyCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface Dependency {
  service: string;
  condition: DependencyCondition;
  /** Compose's `required: false`: a dependency that is not in the desired state is no reason to wait. */
  required?: boolean;
  /** Compose's `restart: true`: recreated when that dependency is. */
  restart?: boolean;
}

export interface DesiredService {
  name: string;
  spec: ContainerSpec;
  hash: SpecHash;
  /** With a keyed hash: the plain SHA-256 an earlier agent labelled containers with (recognised, never written). */
  legacyHash?: SpecHash;
  agent: AgentOptions;
  dependsOn: Dependency[];
  location: SourceLocation;
  /** Where its `image:` is written (the tag check points there). */
  imageLocation?: SourceLocation;
}

export interface VolumeSpec {
  /** Engine-side name: `<stack>_<key>` unless `name:` or `external` says otherwise. */
  name: string;
  external: boolean;
  labels: Record<string, string>;
  /** A volume driver other than `local`, or options of the local one (an NFS share, a bind). */
  driver?: { name: string; options: Record<string, string> };
}

/** A network of the stack, as Compose defines it. */
export interface NetworkSpec {
  /** Engine-side name: `<stack>_<key>` unless `name:` or `external` says otherwise. */
  name: string;
  /** An existing network: attached to, never created, changed or removed. */
  external: boolean;
  driver: string;
  driverOpts: Record<string, string>;
  internal: boolean;
  attachable: boolean;
  enableIpv6: boolean;
  ipam?: { driver?: string; config: { subnet?: string; gateway?: string; ipRange?: string; auxAddresses?: Record<string, string> }[]; options?: Record<string, string> };
  labels: Record<string, string>;
}

export interface WindowSpec {
  /** Cron expression of the window's start. */
  schedule: string;
  durationMs: number;
  timezone: string;
}

export interface CertbotJob {
  image: string;
  volumes: Mount[];
  args: string[];
  networkMode: 'host' | 'bridge';
  reload?: { service: string; command: string[] };
}

export interface JobSpec {
  name: string;
  schedule: string;
  timezone: string;
  missed: 'run-once' | 'skip';
  backup?: { services: string[] };
  drill?: { services: string[] };
  certbot?: CertbotJob;
}

export interface BackupPolicy {
  retention: { keep: number; maxAgeMs?: number };
}

export interface DesiredState {
  stack: string;
  revision: Revision;
  /** Keyed by service name; iteration order is sorted by name. */
  services: Record<string, DesiredService>;
  volumes: Record<string, VolumeSpec>;
  /** Keyed as in the files (`default` for the stack's default network, when a service uses it). */
  networks: Record<string, NetworkSpec>;
  backups: BackupPolicy;
  jobs: Record<string, JobSpec>;
  files: string[];
}

export type { ImageRef, SpecHash };
