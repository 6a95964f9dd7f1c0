import { Readable } from 'node:stream';
import { AgentError } from '../../../agent/core/errors.js';
import { asContainerId, type ContainerId } from '../../../agent/core/ids.js';
import { pullReference } from '../../../agent/core/image-ref.js';
import type { CreateContainerRequest, DockerPort, NetworkInfo } from '../../../agent/ports/docker.js';
import { LABELS } from '../../../agent/core/labels.js';
import type { ContainerInfo } from '../../../agent/model/actual.js';
import type { ContainerSpec, NetworkSpec, RestartPolicy } from '../../../agent/model/desired.js';

/** How a container of an image behaves when started. */
/**
 * crash-loop: exits with code 127 and is started again by its restart policy, so that inspect
 * shows it running with exit code 0 (as Docker does once it restarted) and only the engine's
 * events tell the real exit code.
 */
export type Behaviour = 'healthy' | 'crash' | 'crash-loop' | 'unhealthy' | 'no-healthcheck';

interface FakeContainer {
  id: ContainerId;
  name: string;
  spec: ContainerSpec;
  labels: Record<string, string>;
  status: ContainerInfo['status'];
  exitCode: number;
  restartCount: number;
  startedAt: string;
  restartPolicy: RestartPolicy;
  behaviour: Behaviour;
}

/**
 * An in-memory Docker engine for unit tests of the executor: images, a registry, containers
 * whose behaviour depends on their image, and faults injected per method.
 */
export class FakeDocker implements DockerPort {
  readonly local = new Set<string>();
  readonly registry = new Map<string, Behaviour>();
  readonly containers = new Map<string, FakeContainer>();
  readonly volumes = new Set<string>();
  /** Networks by name: their labels, and the containers attached with their aliases. */
  readonly networks = new Map<string, { spec: NetworkSpec; labels: Record<string, string>; endpoints: Map<string, string[]> }>();
  readonly calls: string[] = [];
  /** Exits per container, as the engine's `die` events report them. */
  readonly exitEvents = new Map<string, { exitCode: number; at: number }[]>();
  private faults = new Map<string, AgentError[]>();
  private seq = 0;
  private tick = 0;

  /** The next call(s) of `method` throw `err`. */
  failNext(method: keyof DockerPort, err: AgentError, times = 1): void {
    this.faults.set(method, [...(this.faults.get(method) ?? []), ...Array.from({ length: times }, () => err)]);
  }

  private enter(method: keyof DockerPort, detail = ''): void {
    this.calls.push(detail ? `${method} ${detail}` : method);
    const queue = this.faults.get(method);
    const err = queue?.shift();
    if (err) throw err;
  }

  /** Containers as a summary for assertions: name -> status/image. */
  snapshot(): { name: string; status: string; image: string }[] {
    return [...this.containers.values()].map((c) => ({ name: c.name, status: c.status, image: c.spec.image })).sort((a, b) => a.name.localeCompare(b.name));
  }

  running(): FakeContainer[] {
    return [...this.containers.values()].filter((c) => c.status === 'running');
  }

  async ping(): Promise<void> {
    this.enter('ping');
  }

  async listContainers(labels: Record<string, string | true>): Promise<ContainerInfo[]> {
    this.enter('listContainers');
    return [...this.containers.values()].filter((c) => Object.entries(labels).every(([k, v]) => (v === true ? k in c.labels : c.labels[k] === v))).map((c) => this.info(c));
  }

  async inspectContainer(idOrName: string): Promise<ContainerInfo | undefined> {
    this.enter('inspectContainer', idOrName);
    const c = this.find(idOrName);
    if (c?.behaviour === 'crash-loop' && c.status === 'running' && c.restartPolicy !== 'no') {
      // It died and was started again between two looks: running, exit code 0, one more restart.
      c.restartCount++;
      c.startedAt = new Date(Date.UTC(2026, 0, 1, 0, 0, ++this.tick)).toISOString();
      this.recordExit(c.id, 127);
    }
    return c ? this.info(c) : undefined;
  }

  async exits(id: ContainerId, sinceMs: number): Promise<{ exitCode: number; at: number }[]> {
    this.enter('exits', id);
    return (this.exitEvents.get(this.must(id).id) ?? []).filter((e) => e.at >= sinceMs);
  }

  private recordExit(id: ContainerId, exitCode: number): void {
    this.exitEvents.set(id, [...(this.exitEvents.get(id) ?? []), { exitCode, at: Date.UTC(2026, 0, 1, 0, 0, this.tick) }]);
  }

  async hasImage(ref: string): Promise<boolean> {
    this.enter('hasImage', ref);
    return this.local.has(pullReference(ref));
  }

  async pullImage(ref: string): Promise<void> {
    this.enter('pullImage', ref);
    if (!this.registry.has(pullReference(ref))) throw new AgentError('IMAGE_NOT_FOUND', `image ${ref} not found`);
    this.local.add(pullReference(ref));
  }

  async createContainer(req: CreateContainerRequest): Promise<ContainerId> {
    this.enter('createContainer', req.name);
    if (this.find(req.name)) throw new AgentError('CONTAINER_CREATE_FAILED', `Conflict. The container name "/${req.name}" is already in use`);
    if (!this.local.has(pullReference(req.spec.image))) throw new AgentError('CONTAINER_CREATE_FAILED', `No such image: ${req.spec.image}`);
    const id = asContainerId(`c${String(++this.seq).padStart(63, '0')}`);
    for (const a of req.spec.networks ?? []) {
      const n = this.networks.get(a.network);
      if (!n) throw new AgentError('CONTAINER_CREATE_FAILED', `network ${a.network} not found`);
      n.endpoints.set(id, [...a.aliases, req.name]);
    }
    this.containers.set(id, {
      id,
      name: req.name,
      spec: req.spec,
      labels: { ...req.spec.labels, ...req.labels },
      status: 'created',
      exitCode: 0,
      restartCount: 0,
      startedAt: '0001-01-01T00:00:00Z',
      restartPolicy: req.spec.restart,
      behaviour: this.registry.get(pullReference(req.spec.image)) ?? 'healthy',
    });
    return id;
  }

  async startContainer(id: ContainerId): Promise<void> {
    this.enter('startContainer', id);
    const c = this.must(id);
    if (c.status === 'running') return;
    c.startedAt = new Date(Date.UTC(2026, 0, 1, 0, 0, ++this.tick)).toISOString();
    if (c.behaviour === 'crash') {
      c.status = 'exited';
      c.exitCode = 3;
      this.recordExit(c.id, 3);
    } else {
      c.status = 'running';
      c.exitCode = 0;
    }
  }

  async stopContainer(id: ContainerId): Promise<void> {
    this.enter('stopContainer', id);
    const c = this.find(id);
    if (c && c.status === 'running') {
      c.status = 'exited';
      c.exitCode = 0;
    }
  }

  async removeContainer(id: ContainerId): Promise<void> {
    this.enter('removeContainer', id);
    const c = this.find(id);
    if (c) this.containers.delete(c.id);
  }

  async renameContainer(id: ContainerId, name: string): Promise<void> {
    this.enter('renameContainer', `${id} ${name}`);
    const other = this.find(name);
    if (other && other.id !== id) throw new AgentError('INTERNAL', `name ${name} in use`);
    this.must(id).name = name;
  }

  async setRestartPolicy(id: ContainerId, policy: RestartPolicy): Promise<void> {
    this.enter('setRestartPolicy', id);
    this.must(id).restartPolicy = policy;
  }

  /** What `exec` answers (a reload command that refuses the new files, say). */
  execResult: (id: ContainerId, argv: string[]) => { exitCode: number; output: string } = () => ({ exitCode: 0, output: '' });

  async exec(id: ContainerId, argv: string[]): Promise<{ exitCode: number; output: string }> {
    this.enter('exec', `${id} ${argv.join(' ')}`);
    return this.execResult(id, argv);
  }

  async logs(id: ContainerId): Promise<string> {
    this.enter('logs', id);
    return ['crash', 'crash-loop'].includes(this.must(id).behaviour) ? 'fatal: config invalid' : '';
  }

  async ensureVolume(name: string): Promise<void> {
    this.enter('ensureVolume', name);
    this.volumes.add(name);
  }

  async volumeExists(name: string): Promise<boolean> {
    this.enter('volumeExists', name);
    return this.volumes.has(name);
  }

  async ensureNetwork(spec: NetworkSpec, labels: Record<string, string>): Promise<void> {
    this.enter('ensureNetwork', spec.name);
    const seen = this.networks.get(spec.name);
    if (seen) {
      if (seen.labels[LABELS.networkHash] && labels[LABELS.networkHash] && seen.labels[LABELS.networkHash] !== labels[LABELS.networkHash]) throw new AgentError('NETWORK_CHANGED', `network ${spec.name} exists with another definition`);
      return;
    }
    this.networks.set(spec.name, { spec, labels: { ...spec.labels, ...labels }, endpoints: new Map() });
  }

  async networkExists(name: string): Promise<boolean> {
    this.enter('networkExists', name);
    return this.networks.has(name);
  }

  async listNetworks(labels: Record<string, string>): Promise<NetworkInfo[]> {
    this.enter('listNetworks');
    return [...this.networks.entries()]
      .filter(([, n]) => Object.entries(labels).every(([k, v]) => n.labels[k] === v))
      .map(([name, n]) => ({ id: `net-${name}`, name, labels: n.labels, containers: [...n.endpoints.keys()].filter((id) => this.containers.has(id)) }));
  }

  async removeNetwork(name: string): Promise<void> {
    this.enter('removeNetwork', name);
    const n = this.networks.get(name);
    if (n && [...n.endpoints.keys()].some((id) => this.containers.has(id))) throw new AgentError('DOCKER_ERROR', `network ${name} has active endpoints`);
    this.networks.delete(name);
  }

  async setNetworkAliases(id: ContainerId, a: { network: string; aliases: string[] }): Promise<void> {
    this.enter('setNetworkAliases', `${id} ${a.network}`);
    const c = this.must(id);
    const n = this.networks.get(a.network);
    if (!n) throw new AgentError('DOCKER_ERROR', `network ${a.network} not found`);
    n.endpoints.set(c.id, [...a.aliases, c.name]);
  }

  /** What a container of `network` resolving `name` finds: the ids of the running containers with that alias. */
  resolve(network: string, name: string): string[] {
    const n = this.networks.get(network);
    return [...(n?.endpoints.entries() ?? [])].filter(([id, aliases]) => this.containers.get(id)?.status === 'running' && aliases.includes(name)).map(([id]) => id);
  }

  async execStream(): Promise<{ output: Readable; exitCode(): Promise<number> }> {
    this.enter('execStream');
    return { output: Readable.from([]), exitCode: async () => 0 };
  }

  async getArchive(id: ContainerId, path: string): Promise<Readable> {
    this.enter('getArchive', `${id} ${path}`);
    return Readable.from([Buffer.alloc(1024)]);
  }

  async putArchive(id: ContainerId, path: string, archive: Readable): Promise<void> {
    this.enter('putArchive', `${id} ${path}`);
    archive.resume();
  }

  async runOnce(image: string): Promise<{ exitCode: number; output: string }> {
    this.enter('runOnce', image);
    return { exitCode: 0, output: '' };
  }

  async removeVolume(name: string): Promise<void> {
    this.enter('removeVolume', name);
    this.volumes.delete(name);
  }

  /** restic and other streamed tools are tested on the real engine only. */
  async runStream(req: { image: string }): Promise<never> {
    this.enter('runStream', req.image);
    throw new AgentError('DOCKER_UNAVAILABLE', `the fake engine does not run ${req.image}`);
  }

  /** Adds an image to the registry (and optionally already pulled). */
  addImage(ref: string, behaviour: Behaviour = 'healthy', pulled = false): void {
    this.registry.set(pullReference(ref), behaviour);
    if (pulled) this.local.add(pullReference(ref));
  }

  private find(idOrName: string): FakeContainer | undefined {
    return this.containers.get(idOrName) ?? [...this.containers.values()].find((c) => c.name === idOrName || c.id.startsWith(idOrName));
  }

  private must(id: string): FakeContainer {
    const c = this.find(id);
    if (!c) throw new AgentError('INTERNAL', `No such container: ${id}`);
    return c;
  }

  private info(c: FakeContainer): ContainerInfo {
    const hasHealthcheck = c.behaviour !== 'no-healthcheck';
    const health = c.status !== 'running' || !hasHealthcheck ? (hasHealthcheck ? 'starting' : 'none') : c.behaviour === 'unhealthy' ? 'unhealthy' : 'healthy';
    return {
      id: c.id,
      name: c.name,
      image: c.spec.image,
      imageId: `sha256:${c.spec.image.length}`,
      labels: c.labels,
      status: c.status,
      exitCode: c.exitCode,
      oomKilled: false,
      error: '',
      health,
      healthOutput: c.behaviour === 'unhealthy' ? 'health check failed' : '',
      hasHealthcheck,
      restartCount: c.restartCount,
      startedAt: c.startedAt,
      finishedAt: '',
      restartPolicy: c.restartPolicy,
      mounts: c.spec.volumes.map((m) => ({ type: m.type, source: m.source, target: m.target })),
    };
  }
}
