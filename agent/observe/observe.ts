import { COMPOSE_LABELS, LABELS, containerName, isPreviousContainerName, legacyContainerName } from '../core/labels.js';
import type { DockerReader } from '../ports/docker.js';
import type { ActualState, ContainerInfo, ObservedService } from '../model/actual.js';

/** The stack as it runs: only containers that carry the agent's labels for this stack. */
export async function observeStack(docker: DockerReader, stack: string): Promise<ActualState> {
  const labels = { [LABELS.managed]: 'true', [LABELS.stack]: stack };
  const [containers, networks, project] = await Promise.all([docker.listContainers(labels), docker.listNetworks(labels), docker.listContainers({ [COMPOSE_LABELS.project]: stack })]);
  // A `docker compose` project of the stack's name, which the agent takes over service by service.
  const compose = project.filter((c) => c.labels[LABELS.managed] !== 'true' && c.labels[COMPOSE_LABELS.oneoff] !== 'True' && c.labels[COMPOSE_LABELS.service]);
  const actual = groupByService(stack, containers, compose);
  actual.networks = Object.fromEntries(networks.map((n) => [n.name, { name: n.name, hash: n.labels[LABELS.networkHash] ?? '', containers: n.containers }]));
  return actual;
}

/**
 * Containers by service. `compose`: containers `docker compose` made for a project of the
 * stack's name (no agent labels): a service the agent runs no container for has its compose
 * container as its current one, which its next transaction replaces (takeover); the others are
 * left alone, never counted as leftovers to remove.
 */
export function groupByService(stack: string, containers: ContainerInfo[], compose: ContainerInfo[] = []): ActualState {
  const byService = new Map<string, ContainerInfo[]>();
  for (const c of containers) {
    const name = c.labels[LABELS.service];
    if (name) byService.set(name, [...(byService.get(name) ?? []), c]);
  }
  const sorted: Record<string, ObservedService> = {};
  const composeServices = new Set(compose.map((c) => c.labels[COMPOSE_LABELS.service] as string));
  for (const name of [...new Set([...byService.keys(), ...composeServices])].sort()) {
    const all = (byService.get(name) ?? []).sort((a, b) => a.name.localeCompare(b.name));
    const current = pickCurrent(stack, name, all) ?? composeContainer(compose.filter((c) => c.labels[COMPOSE_LABELS.service] === name));
    sorted[name] = { name, ...(current ? { current } : {}), others: all.filter((c) => c !== current) };
  }
  return { stack, services: sorted };
}

/** Of a compose service's containers, the one to take over: the running one, else the first by name. */
function composeContainer(containers: ContainerInfo[]): ContainerInfo | undefined {
  const sorted = [...containers].sort((a, b) => a.name.localeCompare(b.name));
  return sorted.find((c) => c.status === 'running') ?? sorted[0];
}

/**
 * The live container of a service among those carrying its labels: not a previous one a
 * transaction keeps; by preference Compose's name, then the name agents before it used, then
 * the first by name (a `container_name`).
 */
function pickCurrent(stack: string, service: string, containers: ContainerInfo[]): ContainerInfo | undefined {
  const live = containers.filter((c) => !isPreviousContainerName(c.name));
  return live.find((c) => c.name === containerName(stack, service)) ?? live.find((c) => c.name === legacyContainerName(stack, service)) ?? live[0];
}

/** The live container of one service of the stack, found by its labels whatever its name. */
export async function serviceContainer(docker: DockerReader, stack: string, service: string): Promise<ContainerInfo | undefined> {
  const found = await docker.listContainers({ [LABELS.managed]: 'true', [LABELS.stack]: stack, [LABELS.service]: service });
  return pickCurrent(stack, service, [...found].sort((a, b) => a.name.localeCompare(b.name)));
}
